/** Runs `task` over every item with at most `limit` running at once; results in input order. */
export async function mapConcurrent<T, R>(
  items: AsyncIterable<T> | Iterable<T>,
  limit: number,
  task: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  const running = new Set<Promise<void>>();
  // A task that fails while the next item is awaited is recorded here, never left unhandled.
  let failure: { error: unknown } | undefined;
  let index = 0;
  for await (const item of items) {
    if (failure) break;
    const position = index++;
    const run: Promise<void> = task(item)
      .then(
        (result) => {
          results[position] = result;
        },
        (error: unknown) => {
          failure ??= { error };
        },
      )
      .finally(() => running.delete(run));
    running.add(run);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure) throw failure.error;
  return results;
}
