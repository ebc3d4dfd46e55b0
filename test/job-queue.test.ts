/** JobQueue (src/server/services/job-queue.ts): one job at a time, in order, bounded, closed at once. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JobQueue } from '../src/server/services/job-queue.js';

/** A job that ends when released, or when its signal aborts. */
function gate() {
  const started: number[] = [];
  const releases = new Map<number, () => void>();
  const run = (n: number, signal: AbortSignal) => new Promise<void>((res, rej) => {
    started.push(n);
    releases.set(n, res);
    signal.addEventListener('abort', () => rej(new Error(String(signal.reason))), { once: true });
  });
  const until = async (n: number) => { while (!releases.has(n)) await new Promise((r) => setImmediate(r)); };
  return { started, run, until, release: (n: number) => releases.get(n)!() };
}

test('jobs run one at a time in order; beyond the bound the oldest waiting is dropped', async () => {
  const g = gate();
  const dropped: number[] = [];
  const q = new JobQueue<number>(2, g.run, (n) => dropped.push(n));
  for (const n of [1, 2, 3, 4]) q.push(n);
  await g.until(1);
  assert.deepEqual(g.started, [1], 'only the first runs');
  assert.deepEqual(dropped, [2], '1 runs, 3 and 4 wait: 2 was the oldest waiting');
  g.release(1);
  await g.until(3);
  assert.deepEqual(g.started, [1, 3]);
  g.release(3);
  await g.until(4);
  g.release(4);
  await q.idle();
  assert.deepEqual(g.started, [1, 3, 4]);
  q.push(5);
  await g.until(5);
  g.release(5);
  await q.idle();
});

test('close aborts the running job with the reason, drops the waiting ones, and refuses new ones', async () => {
  const g = gate();
  const q = new JobQueue<number>(8, g.run, () => assert.fail('nothing is dropped'));
  q.push(1);
  q.push(2);
  await g.until(1);
  await q.close('shutting down');
  q.push(3);
  await q.idle();
  assert.deepEqual(g.started, [1]);
});
