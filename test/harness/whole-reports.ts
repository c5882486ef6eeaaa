/**
 * Preloaded into every test process (`--import`, which the runner passes on to each file's process).
 * Under `--test-force-exit` a file's process exits as soon as its last test ends, but it reports to the
 * runner over a pipe, whose writes Node makes asynchronous: the last verdicts still buffered were lost,
 * and the run counted fewer tests than ran, still passing (nodejs/node#64833). Blocking writes cannot be
 * left behind by an exit.
 */
const stdout = process.stdout as unknown as {
  isTTY?: boolean;
  _handle?: { setBlocking?(on: boolean): void };
};
if (!stdout.isTTY) stdout._handle?.setBlocking?.(true);
