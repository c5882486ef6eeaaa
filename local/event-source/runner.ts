/**
 * A local SQS event source mapping: several worker processes polling one queue and invoking a
 * function's handler module, replaced when they die (as Lambda replaces a crashed instance).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT_SAFE_NODE_FLAGS } from '../../infra/shared/exit-safe-node.ts';

export interface EventSourceOptions {
  readonly queueUrl: string;
  readonly queueArn: string;
  /** Absolute path of the handler module (e.g. functions/sender/handler.ts). */
  readonly handlerModule: string;
  /** Environment of the workers (the function's configuration, the AWS endpoint). */
  readonly env: Record<string, string>;
  /** @default 2 */
  readonly workers?: number;
  /** @default 10 */
  readonly batchSize?: number;
  /** @default 20 */
  readonly waitSeconds?: number;
  /** The mapping's batching window, ms (poll.ts): the deployed sender's is 1 s. @default 0 */
  readonly batchingWindowMs?: number;
  /** Short receives this often instead of moto's long poll (poll.ts). @default long polling */
  readonly promptPollMs?: number;
  /** @default 60000 */
  readonly timeoutMs?: number;
  /** Chance that a worker dies after its handler returned and before its delete (fault injection). @default 0 */
  readonly killAfterHandler?: number;
  /** Chance that a batch's first message is made visible again at once: a duplicate delivery. @default 0 */
  readonly duplicateRate?: number;
  /**
   * The first worker's first batch gets both faults for sure (a duplicate delivery, then death before
   * the delete), so a short run cannot pass without them. @default false
   */
  readonly strikeFirstBatch?: boolean;
  /**
   * The event source mapping this runner stands in for (its UUID in the emulator's Lambda): the workers
   * receive only while it is enabled, as Lambda's pollers do. @default none (always enabled)
   */
  readonly mappingUuid?: string;
  /**
   * How often a worker reads the mapping's state: a disabled mapping stops its workers within this
   * (Lambda's pollers, too, go on delivering for a while after a mapping is disabled). @default 2000
   */
  readonly mappingRefreshMs?: number;
  /** Receives every line the workers print (their logs and metrics). */
  readonly onOutput?: (line: string) => void;
}

export interface EventSourceStats {
  batches: number;
  received: number;
  failed: number;
  deleted: number;
  kills: number;
  restarts: number;
  duplicated: number;
  /** Consecutive empty receives across workers: the queue looks drained. */
  emptyPolls: number;
  /** Time spent in the handler, summed over batches: the billed duration. */
  handlerMs: number;
  /** Rounds a worker skipped because the mapping was disabled. */
  disabledPolls: number;
}

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'worker.ts');

export function startEventSource(options: EventSourceOptions) {
  const stats: EventSourceStats = {
    batches: 0,
    received: 0,
    failed: 0,
    deleted: 0,
    kills: 0,
    restarts: 0,
    duplicated: 0,
    emptyPolls: 0,
    handlerMs: 0,
    disabledPolls: 0,
  };
  const workers = new Set<ChildProcess>();
  let stopping = false;
  let spawned = 0;

  function spawnWorker(): void {
    const first = spawned++ === 0;
    const child = fork(WORKER, [], {
      // A fresh Node, not the parent's flags (a test runner's or an inspector's); it ends with exit().
      execArgv: [...EXIT_SAFE_NODE_FLAGS],
      env: {
        PATH: process.env.PATH ?? '',
        ...options.env,
        EVENT_SOURCE_QUEUE_URL: options.queueUrl,
        EVENT_SOURCE_QUEUE_ARN: options.queueArn,
        EVENT_SOURCE_HANDLER: options.handlerModule,
        EVENT_SOURCE_BATCH_SIZE: String(options.batchSize ?? 10),
        EVENT_SOURCE_WAIT_SECONDS: String(options.waitSeconds ?? 20),
        EVENT_SOURCE_BATCHING_WINDOW_MS: String(options.batchingWindowMs ?? 0),
        EVENT_SOURCE_PROMPT_POLL_MS: String(options.promptPollMs ?? 0),
        EVENT_SOURCE_TIMEOUT_MS: String(options.timeoutMs ?? 60_000),
        EVENT_SOURCE_KILL_AFTER_HANDLER: String(options.killAfterHandler ?? 0),
        EVENT_SOURCE_DUPLICATE_RATE: String(options.duplicateRate ?? 0),
        EVENT_SOURCE_STRIKE_FIRST_BATCH: options.strikeFirstBatch && first ? '1' : '0',
        ...(options.mappingUuid ? { EVENT_SOURCE_MAPPING_UUID: options.mappingUuid } : {}),
        EVENT_SOURCE_MAPPING_REFRESH_MS: String(options.mappingRefreshMs ?? 2000),
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    workers.add(child);
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream?.on('data', (chunk: Buffer) => {
        const lines = (rest + chunk.toString()).split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) if (line) options.onOutput?.(line);
      });
    }
    child.on(
      'message',
      (message: {
        type: string;
        received?: number;
        failed?: number;
        deleted?: number;
        handlerMs?: number;
      }) => {
        if (message.type === 'dying') stats.kills++;
        if (message.type === 'duplicated') stats.duplicated++;
        if (message.type === 'disabled') stats.disabledPolls++;
        if (message.type !== 'batch') return;
        if (!message.received) {
          stats.emptyPolls++;
          return;
        }
        stats.emptyPolls = 0;
        stats.batches++;
        stats.received += message.received;
        stats.failed += message.failed ?? 0;
        stats.deleted += message.deleted ?? 0;
        stats.handlerMs += message.handlerMs ?? 0;
      },
    );
    child.on('exit', () => {
      workers.delete(child);
      if (!stopping) {
        stats.restarts++;
        spawnWorker();
      }
    });
  }

  for (let index = 0; index < (options.workers ?? 2); index++) spawnWorker();

  return {
    stats,
    /** Waits until the workers have seen only empty receives for a while, or the timeout. */
    async waitUntilIdle(options: { quietPolls?: number; timeoutMs?: number } = {}): Promise<boolean> {
      const deadline = Date.now() + (options.timeoutMs ?? 600_000);
      while (Date.now() < deadline) {
        if (stats.emptyPolls >= (options.quietPolls ?? 6)) return true;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      return false;
    },
    async stop(): Promise<void> {
      stopping = true;
      const exits = [...workers].map((child) => new Promise((resolve) => child.once('exit', resolve)));
      for (const child of workers) child.send('stop');
      const timer = setTimeout(() => {
        for (const child of workers) child.kill('SIGKILL');
      }, 25_000);
      await Promise.all(exits);
      clearTimeout(timer);
    },
  };
}
