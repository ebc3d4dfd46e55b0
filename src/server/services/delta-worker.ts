import { parentPort } from 'node:worker_threads';
import { computeDelta } from '../../delta/compute.js';

/**
 * Runs one delta computation off the server's event loop (the suffix sort and scan are seconds of
 * synchronous CPU on a large tree): receives the two tree streams, answers with the delta. The
 * server terminates this thread on shutdown or past the time bound.
 */
parentPort!.once('message', (msg: { old: Uint8Array; neu: Uint8Array; lowCost: boolean; testDelayMs: number }) => {
  // TEST HOOK: synchronous work the server must be able to cut short (Atomics.wait blocks the
  // thread as a long suffix sort does, without burning a core).
  if (msg.testDelayMs > 0) {
    const until = Date.now() + msg.testDelayMs;
    const cell = new Int32Array(new SharedArrayBuffer(4));
    while (Date.now() < until) Atomics.wait(cell, 0, 0, Math.min(50, until - Date.now()));
  }
  const view = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  computeDelta(view(msg.old), view(msg.neu), { lowCost: msg.lowCost }).then(
    (r) => parentPort!.postMessage({ delta: r.delta, engine: r.engine }),
    (err: Error) => parentPort!.postMessage({ error: err.message }),
  );
});
