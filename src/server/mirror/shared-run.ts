/**
 * Wraps `run` so that a call while one is in progress gets that run's result instead of starting
 * a second (a timer and an operator's request never sync the same mirrors twice at once).
 */
export function sharedRun<T>(run: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  return () => (running ??= run().finally(() => { running = undefined; }));
}
