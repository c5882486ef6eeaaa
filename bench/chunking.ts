/**
 * SMTP round trips a message against a server that offers CHUNKING (RFC 3030) and PIPELINING, as
 * smtp.gmail.com and smtp.office365.com do: Debian's Postfix, with STARTTLS and XOAUTH2 checked by
 * Dovecot, behind a latency proxy that counts the client's turns. Ours (its BDAT transactions) against
 * the competent peer (a pooled nodemailer transport, which sends DATA), both on one warm connection:
 * messages sent one at a time (a quiet mailbox, a paced Microsoft one: an invocation with one message)
 * and ten at once (a batch). The bench's main runs use smtp-server, which has no CHUNKING.
 *
 * `npm run bench:chunking` runs it three times at a 10 ms round trip and writes the `chunking` section
 * and its targets of bench/results.json.
 */
import nodemailer from 'nodemailer';
import { composeMessage } from '../functions/shared/smtp/compose.ts';
import { SmtpConnection } from '../functions/shared/smtp/smtp-connection.ts';
import { MailboxTransport } from '../functions/shared/smtp/transports.ts';
import { accessTokenFor } from '../local/world/access-tokens.ts';
import { startDovecotFor } from '../local/world/dovecot.ts';
import { startLatencyProxy } from '../local/world/latency-proxy.ts';
import { startOAuthServer } from '../local/world/oauth-server.ts';
import { startPostfix } from '../local/world/postfix.ts';
import { testCertificates } from '../local/world/tls.ts';
import { writeSection } from './results-section.ts';

const SENDER = 'bench@mailbox.test';
const TO = 'someone@elsewhere.test';
const MESSAGES = 10;
const TIMEOUTS = { connectionMs: 10_000, greetingMs: 10_000, socketMs: 30_000 };
const RUNS = 3;
const RTT_MS = 10;
const round = (value: number, digits = 2) => Number(value.toFixed(digits));

/** Round trips and wall time a message for each way of sending. */
interface ChunkingFigures {
  readonly rttMs: number;
  readonly ours: { readonly alone: number; readonly batch: number; readonly aloneMs: number };
  readonly peer: { readonly alone: number; readonly batch: number; readonly aloneMs: number };
}

async function measureChunking(rttMs: number): Promise<ChunkingFigures> {
  const certificates = await testCertificates();
  const oauth = await startOAuthServer({ profile: 'google' });
  const dovecot = await startDovecotFor(oauth, certificates);
  const postfix = await startPostfix({ dovecot, tls: certificates });
  const proxy = await startLatencyProxy(postfix.port, rttMs);
  try {
    const { accessToken } = await accessTokenFor(oauth, SENDER);
    const mail = (subject: string) => ({
      from: SENDER,
      to: TO,
      subject,
      text: `The message called ${subject}.`,
    });

    const pool = new MailboxTransport(
      () =>
        SmtpConnection.open(
          SENDER,
          { host: postfix.host, port: proxy.port, secure: false, ca: certificates.ca },
          async () => accessToken,
          TIMEOUTS,
        ),
      1,
    );
    const ours = await measure(proxy, (subject) =>
      pool.sendMail(composeMessage(mail(subject), subject, [TO])),
    );
    pool.close();

    const transporter = nodemailer.createTransport({
      pool: true,
      maxConnections: 1,
      host: postfix.host,
      port: proxy.port,
      secure: false,
      requireTLS: true,
      tls: { ca: certificates.ca },
      auth: { type: 'OAuth2', user: SENDER, accessToken },
    });
    const peer = await measure(proxy, (subject) => transporter.sendMail(mail(subject)));
    transporter.close();
    return { rttMs, ours, peer };
  } finally {
    await proxy.stop();
    await postfix.stop();
    await dovecot.stop();
    await oauth.stop();
  }
}

/** Warms a connection up, then sends MESSAGES one at a time and MESSAGES at once, counting round trips. */
async function measure(
  proxy: { roundTrips: number },
  send: (subject: string) => Promise<{ response: string }>,
): Promise<ChunkingFigures['ours']> {
  const subjects = (kind: string) => Array.from({ length: MESSAGES }, (_, index) => `${kind}-${index}`);
  await send('warm-up');
  proxy.roundTrips = 0;
  const started = performance.now();
  for (const subject of subjects('alone')) await send(subject);
  const aloneMs = (performance.now() - started) / MESSAGES;
  const alone = proxy.roundTrips / MESSAGES;
  proxy.roundTrips = 0;
  const sent = await Promise.all(subjects('batch').map(send));
  const batch = proxy.roundTrips / MESSAGES;
  if (!sent.every((info) => /^250 /.test(info.response))) throw new Error('a message was not taken');
  return { alone: round(alone), batch: round(batch), aloneMs: round(aloneMs, 1) };
}

const runs: ChunkingFigures[] = [];
for (let run = 0; run < RUNS; run++) {
  runs.push(await measureChunking(RTT_MS));
  process.stderr.write(`chunking run ${run + 1}: ${JSON.stringify(runs.at(-1))}\n`);
}
const highest = (pick: (figures: ChunkingFigures) => number) => Math.max(...runs.map(pick));
const timeRatios = runs.map((run) => round(run.ours.aloneMs / run.peer.aloneMs));
const timeRatio = [...timeRatios].sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
writeSection('chunking', { rttMs: RTT_MS, runs }, 'SMTP chunking', [
  {
    name: `SMTP chunking: round trips per message sent alone on a warm connection, Postfix offering CHUNKING (the pooled nodemailer peer: ${highest((run) => run.peer.alone)})`,
    target: '<= 1',
    measured: highest((run) => run.ours.alone),
    met: highest((run) => run.ours.alone) <= 1,
  },
  {
    name: `SMTP chunking: round trips per message, ten queued on one warm connection (the peer: ${highest((run) => run.peer.batch)})`,
    target: '<= 1',
    measured: highest((run) => run.ours.batch),
    met: highest((run) => run.ours.batch) <= 1,
  },
  {
    name: `SMTP chunking: ms per message sent alone at ${RTT_MS} ms round trip, ours / the peer, median of ${RUNS} runs`,
    spread: { min: Math.min(...timeRatios), max: Math.max(...timeRatios) },
    target: '<= 1.0',
    measured: timeRatio,
    met: timeRatio <= 1,
  },
]);
