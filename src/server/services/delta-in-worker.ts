import { Worker } from 'node:worker_threads';
import type { ComputeDelta } from './deltas.js';

/** The delta computation was stopped (shutdown, or past its time bound) and its worker terminated. */
export class DeltaAbortedError extends Error {
  override name = 'DeltaAbortedError';
}

/**
 * A ComputeDelta that runs in a worker thread (the caller's buffers may be moved into it: it must
 * not use them afterwards), so publishing and checks never wait on it, and that
 * `signal` stops at once by terminating the thread (the synchronous suffix sort cannot be
 * interrupted any other way). Used by `patchwire serve` (compiled JavaScript: the worker file
 * sits next to this one in dist/). `testDelayMs` (a test hook) holds the worker that long first.
 */
export function deltaInWorker(testDelayMs = 0): ComputeDelta {
  return (oldStream, newStream, o) =>
    new Promise((resolve, reject) => {
      if (o.signal.aborted) return reject(new DeltaAbortedError(String(o.signal.reason)));
      const worker = new Worker(new URL('./delta-worker.js', import.meta.url));
      const onAbort = () => {
        reject(new DeltaAbortedError(String(o.signal.reason)));
        void worker.terminate();
      };
      o.signal.addEventListener('abort', onAbort, { once: true });
      const done = () => o.signal.removeEventListener('abort', onAbort);
      worker.once('message', (m: { delta?: Uint8Array; engine?: string; error?: string }) => {
        done();
        void worker.terminate();
        if (m.error || !m.delta || !m.engine) reject(new Error(m.error ?? 'the delta worker answered nothing'));
        else resolve({ delta: Buffer.from(m.delta.buffer, m.delta.byteOffset, m.delta.byteLength), engine: m.engine });
      });
      worker.once('error', (err) => { done(); reject(err); });
      worker.once('exit', (code) => { done(); if (code !== 0) reject(new Error(`the delta worker exited with ${code}`)); });
      // A buffer that owns its whole memory is moved (not copied: that would double the memory of a
      // large tree); a view of a shared pool is copied, so the pool stays usable.
      const own = (b: Buffer) => b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer;
      const old = own(oldStream) ? oldStream : new Uint8Array(oldStream);
      const neu = own(newStream) ? newStream : new Uint8Array(newStream);
      const moved = [old, neu].filter((b) => b === oldStream || b === newStream).map((b) => b.buffer as ArrayBuffer);
      worker.postMessage({ old, neu, lowCost: o.lowCost, testDelayMs }, moved);
    });
}
