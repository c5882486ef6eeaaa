/**
 * A message whose body waits for a go-ahead: the SMTP envelope (MAIL FROM, RCPT TO, DATA) goes out at
 * once, the content only once `bodyHeldUntil` resolves. The idempotency claim is written during the
 * envelope's round trip instead of before it, and still before the message is sent: nothing is
 * delivered before the end-of-data dot. When the go-ahead is refused (the claim found the message sent
 * or being sent), the send is aborted: a message still queued in the pool never leaves, one whose
 * envelope went has its connection closed without that dot, and the server discards the transaction
 * (RFC 5321 4.1.1.4).
 */
import { Transform, type TransformCallback } from 'node:stream';
import type Mail from 'nodemailer/lib/mailer';

/** The message option naming the go-ahead (nodemailer ignores options it does not know). */
const BODY_HELD_UNTIL = 'bodyHeldUntil';

/** The message options that hold its body until `go` resolves and abort it if `go` rejects. */
export function heldBody(go: Promise<void>): { [BODY_HELD_UNTIL]: Promise<void>; signal: AbortSignal } {
  const controller = new AbortController();
  go.catch((error: unknown) => controller.abort(error));
  return { [BODY_HELD_UNTIL]: go, signal: controller.signal };
}

/** Passes the message through once `until` resolves; fails it if `until` rejects. */
function heldUntil(until: Promise<void>): Transform {
  let open = false;
  const hold = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (open) return callback(null, chunk);
      until.then(
        () => {
          open = true;
          callback(null, chunk);
        },
        (error: Error) => callback(error),
      );
    },
    // A body without a byte would otherwise end (and the dot go) before the go-ahead.
    flush(callback: TransformCallback) {
      until.then(() => callback(), callback);
    },
  });
  return hold;
}

/** Holds the body of every message sent with a `bodyHeldUntil` option until it resolves. */
export function holdBodies(transport: Mail): void {
  transport.use('stream', (mail, done) => {
    const until = (mail.data as Record<string, unknown>)[BODY_HELD_UNTIL];
    if (until instanceof Promise) mail.message.transform(() => heldUntil(until));
    done();
  });
}
