/**
 * Registers the harness lifecycle for a test file: start the servers once, reset them before each
 * test, and at the end close every sender and check that no secret reached any captured output.
 */
import { after, before, beforeEach } from 'node:test';
import { startWorld, type World, type WorldOptions } from '../../local/world/index.ts';
import { assertNoSecretsIn } from './assertions.ts';
import type { TestSender } from './factories.ts';

export interface HarnessContext {
  /** The file's harness, usable inside hooks and tests (it starts in before()). */
  readonly harness: World;
  /** Closes the sender after the file and includes its output in the secret scan. */
  track<T extends TestSender>(sender: T): T;
}

export function useHarness(options: WorldOptions = {}): HarnessContext {
  let harness: World | undefined;
  const senders: TestSender[] = [];
  before(async () => {
    harness = await startWorld(options);
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
function startedHarness(current: () => World | undefined): World {
  return new Proxy({} as World, {
    get(_target, property) {
      const harness = current();
      if (!harness) throw new Error('the harness starts in before(); use it inside hooks and tests');
      return Reflect.get(harness, property);
    },
  });
}
