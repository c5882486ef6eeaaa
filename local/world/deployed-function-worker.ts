/**
 * A deployed function's handler in a process of its own, with the function's whole environment (its
 * variables, its role's credentials): each IPC message is one invocation, answered with its result.
 */
const { handler } = (await import(process.env.DEPLOYED_HANDLER_MODULE!)) as {
  handler: (event: unknown) => Promise<unknown>;
};

process.on('message', async ({ id, event }: { id: number; event: unknown }) => {
  try {
    process.send!({ id, result: (await handler(event)) ?? null });
  } catch (error) {
    process.send!({ id, error: String((error as Error)?.stack ?? error) });
  }
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });
