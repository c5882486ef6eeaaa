/**
 * Reads a secret (a refresh token) from standard input, never from an argument, where it would land in
 * the shell history and in every process listing. A terminal gets a prompt and no echo; a pipe is read
 * to its end.
 */
import { stderr, stdin } from 'node:process';

const MAX_BYTES = 16_384;

export async function readSecretInput(what: string): Promise<string> {
  if (!stdin.isTTY) {
    let input = '';
    for await (const chunk of stdin) {
      input += chunk;
      if (input.length > MAX_BYTES)
        throw new Error(`the ${what} on standard input is longer than ${MAX_BYTES} bytes`);
    }
    return input.trim();
  }
  stderr.write(`Paste the ${what}, then press Enter (it is not shown): `);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  try {
    let input = '';
    for await (const chunk of stdin) {
      // A terminal's bracketed paste wraps what was pasted in markers: not part of the token.
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the escape that starts the markers
      for (const char of (chunk as string).replace(/\u001b\[20[01]~/g, '')) {
        if (char === '\u0003') throw new Error('cancelled');
        if (char === '\r' || char === '\n' || char === '\u0004') return input.trim();
        input = char === '\u007f' || char === '\b' ? input.slice(0, -1) : input + char;
        if (input.length > MAX_BYTES) throw new Error(`the ${what} is longer than ${MAX_BYTES} characters`);
      }
    }
    return input.trim();
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    stderr.write('\n');
  }
}
