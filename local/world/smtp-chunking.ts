/**
 * BDAT (RFC 3030 CHUNKING) for one smtp-server connection, which has none of its own: smtp.gmail.com
 * and smtp.office365.com advertise CHUNKING, so the stand-in does too. A transaction's chunks feed the
 * same message stream DATA would (its onData and faults included), byte for byte, without
 * dot-unstuffing; each chunk short of LAST is answered `250 2.0.0 <n> octets received`, LAST as DATA's
 * end is. As Gmail: a BDAT before login is refused with 530, one without a recipient with 503, each once
 * its bytes are read (the server must read them: RFC 3030 section 2); the chunk that takes the message
 * past the advertised SIZE, and every one after, with 552; MAIL, RCPT and DATA inside an open BDAT
 * transaction with 503; RSET (or EHLO) abandons it; an idle client between chunks is timed out. It works
 * on smtp-server's parser (SMTPStream) from the outside: its `_feedDataStream`, `_endDataMode`, `_write`
 * and `_maxBytes` (smtp-server 3.x).
 */
import type { PassThrough } from 'node:stream';
import type { SMTPServerSession } from 'smtp-server';

type Done = (error?: Error) => void;

interface Parser {
  _dataMode: boolean;
  /** The advertised SIZE (Infinity without one). */
  readonly _maxBytes: number;
  dataBytes: number;
  _dataStream: PassThrough | null;
  _feedDataStream(chunk: Buffer, done: Done): void;
  _endDataMode(chunk: Buffer | false, remainder: Buffer, callback: Done): void;
  _write(chunk: Buffer, encoding: string, callback: Done): void;
  _countDataBytes(length: number): void;
}

export interface ChunkingConnection {
  readonly _parser: Parser | false;
  readonly session: SMTPServerSession;
  /** The message stream DATA's handler opened (false when none). */
  _dataStream: PassThrough | false;
  send(code: number, data?: string | string[]): void;
  handler_DATA(command: Buffer, callback: () => void): void;
  _resetSession(): void;
  _onTimeout(): void;
}

/** A chunk being read: how many of its bytes are still to come, and what its end does. */
interface Pending {
  left: number;
  /** Where the bytes go: the message, or nowhere (a refused chunk). */
  readonly into: boolean;
  readonly end: (rest: Buffer, done: Done) => void;
}

const SYNTAX = /^BDAT (\d{1,10})( LAST)?$/i;

/**
 * Teaches `connection` BDAT. @returns the command handler: true when it took the line (a BDAT), and
 * `callback` resumes the parser once the chunk is read
 * @param swallow354 called around DATA's start, whose 354 BDAT must not send
 */
export function chunkingFor(
  connection: ChunkingConnection,
  swallow354: (swallowing: boolean) => void,
): (line: string, callback: () => void) => boolean {
  /** Whether a BDAT transaction is open (its LAST not yet come). */
  let open = false;
  let pending: Pending | undefined;
  const patched = new WeakSet<Parser>();

  // RSET, EHLO and a new session abandon an open transaction: its chunks so far go nowhere.
  const resetSession = connection._resetSession.bind(connection);
  connection._resetSession = () => {
    const parser = connection._parser;
    if (open && parser) {
      parser._dataStream?.destroy();
      parser._dataStream = null;
      parser._dataMode = false;
      connection._dataStream = false;
      pending = undefined;
      open = false;
    }
    resetSession();
  };
  // smtp-server waits on without a timeout while a message stream is open and its parser reads
  // commands (an onData handler deciding): between chunks, the client owes the next one.
  const onTimeout = connection._onTimeout.bind(connection);
  connection._onTimeout = () => {
    if (open && !pending) connection.send(421, '4.4.2 Timeout - closing connection');
    else onTimeout();
  };

  /** Reads the chunk's bytes from the parser's input before any command. */
  const patch = (parser: Parser) => {
    if (patched.has(parser)) return;
    patched.add(parser);
    const feed = parser._feedDataStream.bind(parser);
    parser._feedDataStream = (chunk, done) => {
      const chunkRead = pending;
      if (!chunkRead) return feed(chunk, done);
      const take = Math.min(chunkRead.left, chunk.length);
      if (take > 0 && chunkRead.into) {
        parser._countDataBytes(take);
        parser._dataStream?.write(chunk.subarray(0, take));
      }
      chunkRead.left -= take;
      if (chunkRead.left > 0) return done();
      pending = undefined;
      chunkRead.end(chunk.subarray(take), done);
    };
  };

  /** Back to commands after a chunk that leaves the transaction open (or none), with `reply`. */
  const between =
    (parser: Parser, reply: () => void) =>
    (rest: Buffer, done: Done): void => {
      parser._dataMode = false;
      reply();
      parser._write(rest, 'buffer', done);
    };

  return (line, callback) => {
    if (open && /^(MAIL|RCPT|DATA)\b/i.test(line)) {
      connection.send(503, '5.5.1 Error: BDAT transaction in progress');
      callback();
      return true;
    }
    if (!/^BDAT\b/i.test(line)) return false;
    const parser = connection._parser;
    if (!parser) {
      callback();
      return true;
    }
    const match = SYNTAX.exec(line.trim());
    if (!match) {
      connection.send(501, '5.5.4 Syntax: BDAT <size> [LAST]');
      callback();
      return true;
    }
    patch(parser);
    const size = Number(match[1]);
    const last = match[2] !== undefined;
    if (!open && (!connection.session.user || connection.session.envelope.rcptTo.length === 0)) {
      const refuse = connection.session.user
        ? () => connection.send(503, '5.5.1 Error: need RCPT command')
        : () => connection.send(530, '5.7.0 Authentication Required');
      if (size === 0) {
        refuse();
        callback();
        return true;
      }
      parser._dataMode = true;
      pending = { left: size, into: false, end: between(parser, refuse) };
      callback();
      return true;
    }
    if (!open) {
      // DATA's own start: the message stream, onData and the final reply, without its 354.
      swallow354(true);
      try {
        connection.handler_DATA(Buffer.from('DATA'), () => undefined);
      } finally {
        swallow354(false);
      }
      open = true;
    }
    if (last) open = false;
    // LAST's reply comes from DATA's end (onData, or 552 past SIZE). Its continuation is registered a
    // turn later: smtp-server's continue() clears the callback after running it, which would drop the
    // one a next transaction's LAST, pipelined in the same read, registered meanwhile.
    const end = last
      ? (rest: Buffer, done: Done) => void setImmediate(() => parser._endDataMode(false, rest, done))
      : between(parser, () =>
          parser.dataBytes > parser._maxBytes
            ? connection.send(552, '5.3.4 Message size exceeds fixed maximum message size')
            : connection.send(250, `2.0.0 ${size} octets received`),
        );
    if (size === 0) {
      end(Buffer.alloc(0), callback);
      return true;
    }
    parser._dataMode = true;
    pending = { left: size, into: true, end };
    callback();
    return true;
  };
}
