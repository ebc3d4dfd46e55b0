import { MessageChannel } from 'node:worker_threads';

/**
 * Frees a typed array's memory now rather than at some later garbage collection (which a suffix
 * array of tens of MB, dropped just before Brotli's native allocations, would otherwise wait
 * for: peak RSS would hold both): its buffer is moved into a message that is dropped. The array
 * is empty at once, its memory is returned by the time the promise settles (the closed ports
 * drop the message within two turns of the event loop: measured with process.memoryUsage().rss).
 * Only for arrays that own their whole buffer.
 */
export async function release(a: ArrayBufferView): Promise<void> {
  if (a.byteOffset !== 0 || a.byteLength !== a.buffer.byteLength || !(a.buffer instanceof ArrayBuffer)) throw new RangeError('release: the array must own its whole buffer');
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(null, [a.buffer]);
  port1.close();
  port2.close();
  await new Promise(setImmediate);
  await new Promise(setImmediate);
}
