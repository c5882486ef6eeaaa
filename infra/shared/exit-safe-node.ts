/**
 * V8 flags for a Node process that ends with process.exit(). On Node 24 such an exit can hang for good:
 * Node joins V8's worker threads while a background Maglev or Sparkplug compile job on one of them waits
 * for a garbage collection that only the exiting main thread could run (nodejs/node#54918 and #64274;
 * twice a CI run hung 80 minutes on it, in a test process ended by the test runner's force-exit). With
 * those two compilers off the worker threads, no job waits. The package scripts and cdk.json's app pass
 * the same flags (an uncaught error ends a process the same way).
 */
export const EXIT_SAFE_NODE_FLAGS: readonly string[] = ['--no-maglev', '--no-concurrent-sparkplug'];
