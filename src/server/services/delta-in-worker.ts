import { Worker } from 'node:worker_threads';
import type { ComputeDelta } from './deltas.js';

/**
 * A ComputeDelta that runs in a worker thread, so publishing and checks never wait on it. Used by
 * `patchwire serve` (compiled JavaScript: the worker file sits next to this one in dist/).
 */
export const computeDeltaInWorker: ComputeDelta = (oldStream, newStream) =>
  new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./delta-worker.js', import.meta.url));
    worker.once('message', (m: { delta?: Uint8Array; engine?: string; error?: string }) => {
      void worker.terminate();
      if (m.error || !m.delta || !m.engine) reject(new Error(m.error ?? 'the delta worker answered nothing'));
      else resolve({ delta: Buffer.from(m.delta.buffer, m.delta.byteOffset, m.delta.byteLength), engine: m.engine });
    });
    worker.once('error', reject);
    worker.once('exit', (code) => { if (code !== 0) reject(new Error(`the delta worker exited with ${code}`)); });
    // Copies, not transfers: the caller keeps its buffers (they may be views of a shared pool).
    worker.postMessage({ old: new Uint8Array(oldStream), neu: new Uint8Array(newStream) });
  });
