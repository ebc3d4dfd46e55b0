import type { Coordination, Subscription } from '../../store/coordination.js';
import { isName } from '../../protocol/names.js';

/** What changed in a product: names the caches a listener reloads (today: the whole product). */
export type CatalogChange = 'product' | 'admission' | 'releases' | 'schedule' | 'moved' | 'deltas' | 'rollouts' | 'timestamp';

/** A token revocation (token-revocations.ts) as it travels to the other processes. */
export interface RevocationNotice {
  deviceId: string;
  product: string;
  /** The key whose tokens stay valid (null: none, after a reject or remove). */
  keyId: string | null;
  /** Epoch milliseconds: tokens issued up to then are refused. */
  at: number;
  /** The device was removed: the per-product device cap counts anew. */
  removed?: boolean;
}

/** What the services call after a change committed. */
export interface CatalogChanges {
  changed(product: string, what: CatalogChange): void;
  revoked(r: RevocationNotice): void;
}

export interface CatalogReloaders {
  /** Reads one product's products/releases/schedules/moved/deltas entries from the store again. */
  reloadProduct(product: string): Promise<void>;
  /** Reads every product again (a missed notification, the periodic fallback). */
  reloadAll(): Promise<void>;
  /** Applies a revocation made by any process (this one too) to this process's memory. */
  revoke(r: RevocationNotice): void;
}

export interface CatalogSyncOptions {
  /** The periodic full reload, the fallback for a lost notification (`serve --cache-reload`). */
  reloadIntervalMs: number;
  log: { warn(o: object, m: string): void; error(o: object, m: string): void };
  /** This process's clock (epoch ms): a revocation's `at` is clamped to it plus MAX_REVOCATION_AHEAD_MS. */
  now?: () => number;
}

/**
 * How far past this process's clock a revocation notice may reach. Any role that can connect to
 * the database can send notifications (PostgreSQL has no privilege for NOTIFY): a forged notice
 * with `at` far in the future would refuse every new token of the device in every process until
 * they restart (found by an attacker). Clamped, it refuses them for at most this long.
 */
export const MAX_REVOCATION_AHEAD_MS = 60_000;

/** Products waiting for a reload at most; beyond, one full reload does them all. */
const MAX_DIRTY = 1000;

/**
 * Keeps the in-memory caches of several server processes on one database in step
 * (docs/architecture.md, "Several processes"). After a change commits, the process that made it
 * notifies `catalog` (`{product, what}`) or `revocation`; every process (the sender too) reloads
 * that product from the store, one reload at a time, coalescing what arrives meanwhile. A gap in
 * the notifications (the listening connection dropped) and a timer (`reloadIntervalMs`) reload
 * everything. On a database only one process uses (SQLite) none of this runs: notify is a no-op
 * and every cache is updated in place by the service that made the change, as before.
 */
export class CatalogSync implements CatalogChanges {
  readonly #dirty = new Set<string>();
  #full = false;
  #running: Promise<void> | undefined;
  #subs: Subscription[] = [];
  #timer: NodeJS.Timeout | undefined;
  #reload: CatalogReloaders | undefined;
  #closed = false;
  #ready = false;

  constructor(readonly coordination: Coordination, private readonly o: CatalogSyncOptions) {}

  get active(): boolean {
    return this.coordination.shared;
  }

  changed(product: string, what: CatalogChange): void {
    this.send('catalog', JSON.stringify({ product, what }));
  }

  revoked(r: RevocationNotice): void {
    this.send('revocation', JSON.stringify(r));
  }

  private send(channel: 'catalog' | 'revocation', payload: string): void {
    if (!this.active || this.#closed) return;
    // The change is committed already; a lost notification is caught by the periodic reload.
    this.coordination.notify(channel, payload).catch((err) => this.o.log.warn({ err: (err as Error).message, channel }, 'notifying the other server processes failed; they catch up at their next periodic reload'));
  }

  /**
   * Listens (only when the database is shared) and starts the periodic reload. Called before the
   * first load so no change between that load and listening is missed; reloads wait for `ready()`.
   */
  async start(reload: CatalogReloaders): Promise<void> {
    if (!this.active) return;
    this.#reload = reload;
    const gap = () => this.schedule(null);
    this.#subs.push(await this.coordination.listen('catalog', (p) => this.onCatalog(p), gap));
    this.#subs.push(await this.coordination.listen('revocation', (p) => this.onRevocation(p), gap));
    this.#timer = setInterval(() => this.schedule(null), this.o.reloadIntervalMs);
    this.#timer.unref();
  }

  /** The first load is done: run the reloads that notifications asked for meanwhile. */
  ready(): void {
    this.#ready = true;
    if (this.#reload && (this.#full || this.#dirty.size > 0)) this.schedule(null);
  }

  /** Waits for the reloads queued so far (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    await Promise.all(this.#subs.map((s) => s.close().catch(() => {})));
    this.#subs = [];
    await this.idle();
  }

  private onCatalog(payload: string): void {
    const m = parse(payload);
    if (!m || !isName(m.product)) return this.ignored('catalog', payload);
    this.schedule(m.product);
  }

  private onRevocation(payload: string): void {
    const m = parse(payload);
    const ok = m && isName(m.product) && typeof m.deviceId === 'string' && m.deviceId.length <= 64
      && (m.keyId === null || (typeof m.keyId === 'string' && m.keyId.length <= 128)) && Number.isSafeInteger(m.at);
    if (!ok) return this.ignored('revocation', payload);
    const at = Math.min(m.at as number, (this.o.now ?? Date.now)() + MAX_REVOCATION_AHEAD_MS);
    this.#reload?.revoke({ deviceId: m.deviceId as string, product: m.product as string, keyId: m.keyId as string | null, at, removed: m.removed === true });
  }

  private ignored(channel: string, payload: string): void {
    this.o.log.warn({ channel, payload: payload.slice(0, 200) }, 'ignored a malformed notification from another server process');
  }

  /** Queues a reload of `product` (null: everything) and runs the queue unless it runs already. */
  private schedule(product: string | null): void {
    if (this.#closed || !this.#reload) return;
    if (product === null || this.#dirty.size >= MAX_DIRTY) this.#full = true;
    else this.#dirty.add(product);
    if (!this.#ready) return;
    this.#running ??= this.drain().finally(() => { this.#running = undefined; });
  }

  private async drain(): Promise<void> {
    const reload = this.#reload!;
    while (!this.#closed && (this.#full || this.#dirty.size > 0)) {
      try {
        if (this.#full) {
          this.#full = false;
          this.#dirty.clear();
          await reload.reloadAll();
        } else {
          const p = this.#dirty.values().next().value as string;
          this.#dirty.delete(p);
          await reload.reloadProduct(p);
        }
      } catch (err) {
        this.o.log.error({ err }, 'reloading the catalog from the database failed; the next notification or periodic reload tries again');
      }
    }
  }
}

function parse(payload: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(payload) as unknown;
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
