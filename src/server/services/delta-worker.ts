import { parentPort } from 'node:worker_threads';
import { computeDelta } from '../../delta/index.js';

/**
 * Runs one delta computation off the server's event loop (the suffix sort and scan are seconds of
 * synchronous CPU on a large tree): receives the two tree streams, answers with the delta.
 */
parentPort!.once('message', (msg: { old: Uint8Array; neu: Uint8Array }) => {
  computeDelta(Buffer.from(msg.old.buffer, msg.old.byteOffset, msg.old.byteLength), Buffer.from(msg.neu.buffer, msg.neu.byteOffset, msg.neu.byteLength)).then(
    (r) => parentPort!.postMessage({ delta: r.delta, engine: r.engine }),
    (err: Error) => parentPort!.postMessage({ error: err.message }),
  );
});
