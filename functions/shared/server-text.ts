/**
 * A mail server's reply text, fit for an error, a log or an event. A server that echoes what it was sent
 * would echo the login: XOAUTH2's base64, or the bearer token inside it (a JWT, Google's `ya29.…`),
 * whole, wrapped over several lines or cut short. Runs of token characters go: every one as long as
 * `longestRun`, and every one that shares 16 characters with a value sent (the token, the login line).
 */
const TOKEN_RUN = /[A-Za-z0-9+/=._~-]+/g;
/** Shorter shared pieces say too little of a token to matter, and would match ordinary words. */
const PIECE = 16;

export function withoutCredentials(
  text: string,
  options: { longestRun: number; sent?: ReadonlyArray<string | undefined> },
): string {
  const pieces = new Set<string>();
  for (const value of options.sent ?? [])
    for (let at = 0; value && at + PIECE <= value.length; at++) pieces.add(value.slice(at, at + PIECE));
  const shares = (run: string) => {
    for (let at = 0; at + PIECE <= run.length; at++) if (pieces.has(run.slice(at, at + PIECE))) return true;
    return false;
  };
  return text.replace(TOKEN_RUN, (run) =>
    run.length >= options.longestRun || (run.length >= PIECE && shares(run)) ? '[redacted]' : run,
  );
}
