import { Worker } from 'node:worker_threads';
import type { SightingRow } from './device-write.js';

/** How often the worker folds the WAL into the database file. */
const CHECKPOINT_MS = 1000;

/**
 * Writes sighting batches in a worker thread with a connection of its own (`serve` opens its store
 * with it; see SqliteStore.open). At a million devices one batch of 500 upserts at random keys took
 * ~10-50 ms of the event loop, a WAL checkpoint (copy + fsync) up to a few hundred more, and every
 * check waited behind them (bench/fleet.ts); in the worker they overlap with checks. A batch is
 * committed when its promise resolves; WAL mode lets the store's connection read meanwhile, and
 * its own writes wait on the write lock (busy_timeout) for at most one batch.
 */
export class SightingWriter {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  readonly #inFlight = new Set<Promise<void>>();
  #next = 0;
  #failed: Error | undefined;

  constructor(file: string) {
    // Compiled (dist/) the worker is the .js file next to this one. From the sources (tests and
    // benches under tsx) it is the .ts file, loaded through tsx registered in the thread first
    // (Node 20 does not hand the main thread's --import loader to workers).
    const source = import.meta.url.endsWith('.ts');
    const entry = new URL(`./sighting-worker${source ? '.ts' : '.js'}`, import.meta.url).href;
    const workerData = { file, checkpointMs: CHECKPOINT_MS };
    this.#worker = source
      ? new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(entry)}); })`, { eval: true, workerData })
      : new Worker(new URL(entry), { workerData });
    this.#worker.unref();
    this.#worker.on('message', (m: { id?: number; error?: string; code?: string }) => {
      if (m.id === undefined) return;
      const w = this.#waiting.get(m.id);
      this.#waiting.delete(m.id);
      if (this.#waiting.size === 0) this.#worker.unref();
      if (m.error) w?.reject(Object.assign(new Error(`writing sightings: ${m.error}`), { code: m.code }));
      else w?.resolve();
    });
    const fail = (err: Error) => {
      this.#failed = err;
      for (const w of this.#waiting.values()) w.reject(err);
      this.#waiting.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => { if (!this.#failed) fail(new Error(`the sighting writer thread exited (${code})`)); });
  }

  /** False once the thread failed or was closed: the store then writes in its own thread. */
  get usable(): boolean {
    return this.#failed === undefined;
  }

  /** Resolves when the batch is committed; `now` stamps updated_at as the store's clock says. */
  write(rows: SightingRow[], now: number): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    const id = ++this.#next;
    const done = new Promise<void>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      // Held (ref) while a batch is in flight so its promise settles; idle, it keeps no process alive.
      this.#worker.ref();
      this.#worker.postMessage({ id, now, rows });
    });
    this.#inFlight.add(done);
    void done.catch(() => {}).finally(() => this.#inFlight.delete(done));
    return done;
  }

  /** Waits for the batches in flight, then closes the worker's connection and ends the thread. */
  async close(): Promise<void> {
    if (this.#failed) return;
    await Promise.allSettled([...this.#inFlight]);
    this.#failed = new Error('the sighting writer is closed');
    const exited = new Promise<void>((r) => this.#worker.once('exit', () => r()));
    this.#worker.ref();
    this.#worker.postMessage({ stop: true });
    await exited;
  }
}
