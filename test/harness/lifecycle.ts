/**
 * Registers the harness lifecycle for a test file: start the servers once, reset them before each
 * test, and at the end close every sender and check that no secret reached any captured output.
 */
import { after, before, beforeEach } from 'node:test';
import { assertNoSecretsIn } from './assertions.ts';
import type { TestSender } from './factories.ts';
import { type Harness, type HarnessOptions, startHarness } from './index.ts';

export interface HarnessContext {
  /** The file's harness, usable inside hooks and tests (it starts in before()). */
  readonly harness: Harness;
  /** Closes the sender after the file and includes its output in the secret scan. */
  track<T extends TestSender>(sender: T): T;
}

export function useHarness(options: HarnessOptions = {}): HarnessContext {
  let harness: Harness | undefined;
  const senders: TestSender[] = [];
  before(async () => {
    harness = await startHarness(options);
  });
  beforeEach(() => harness!.reset());
  after(async () => {
    for (const sender of senders) sender.close();
    assertNoSecretsIn(
      senders.flatMap((sender) => sender.telemetry.lines),
      harness!.secrets(),
    );
    await harness!.stop();
  });
  return {
    harness: startedHarness(() => harness),
    track(sender) {
      senders.push(sender);
      return sender;
    },
  };
}

/** Stands for the harness before it exists, so a test file can name it once, at the top. */
function startedHarness(current: () => Harness | undefined): Harness {
  return new Proxy({} as Harness, {
    get(_target, property) {
      const harness = current();
      if (!harness) throw new Error('the harness starts in before(); use it inside hooks and tests');
      return Reflect.get(harness, property);
    },
  });
}
