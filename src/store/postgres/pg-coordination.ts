import pg from 'pg';
import { checkPayload, type Coordination, type NotifyChannel, type Subscription } from '../coordination.js';
import { KeyedLock } from '../../server/keyed-lock.js';
import { lockKey } from './pg-connection.js';

/** The database channel of a NotifyChannel: prefixed, so other software on the database is not confused with us. */
export const pgChannel = (channel: NotifyChannel): string => `patchwire_${channel}`;

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

interface Subscriber {
  onMessage: (payload: string) => void;
  onGap?: () => void;
}

/**
 * Coordination of every server process on one PostgreSQL database.
 *
 * Locks are session advisory locks (pg_advisory_lock on a 64-bit key of the name) held by one
 * pool connection for fn's whole run, unlocked and returned to the pool however fn ends. Waiters
 * in this process queue in memory first (KeyedLock), so a queue of them holds one connection,
 * not one each. If the lock's connection dies while fn runs, PostgreSQL drops the lock with it:
 * a lock protects work that is also safe to repeat (re-signing a timestamp), not an invariant.
 *
 * Notifications are pg_notify (delivered at the sender's commit; a call outside a transaction
 * commits at once) and one dedicated LISTEN connection per store, reconnected with backoff when
 * it drops; every subscriber's onGap runs after a reconnect, since what was sent meanwhile is lost.
 */
export class PgCoordination implements Coordination {
  readonly shared = true;
  readonly #pool: pg.Pool;
  readonly #listener: PgListener;
  readonly #local = new KeyedLock();
  /** Names this process holds or waits for, with how many callers. */
  readonly #inUse = new Map<string, number>();

  constructor(pool: pg.Pool, listenConfig: pg.ClientConfig) {
    this.#pool = pool;
    this.#listener = new PgListener(listenConfig);
  }

  withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.#busy(name, () => this.#local.run(name, async () => {
      const r = await this.#holding(name, 'SELECT pg_advisory_lock($1::bigint) AS ok', fn);
      return (r as { value: T }).value;
    }));
  }

  async tryLock<T>(name: string, fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> {
    // Held or awaited in this process already: no need to ask the database.
    if (this.#inUse.has(name)) return { ran: false };
    return this.#busy(name, () => this.#holding(name, 'SELECT pg_try_advisory_lock($1::bigint) AS ok', fn));
  }

  async notify(channel: NotifyChannel, payload: string): Promise<void> {
    checkPayload(payload);
    await this.#pool.query('SELECT pg_notify($1, $2)', [pgChannel(channel), payload]);
  }

  listen(channel: NotifyChannel, onMessage: (payload: string) => void, onGap?: () => void): Promise<Subscription> {
    return this.#listener.subscribe(pgChannel(channel), { onMessage, onGap });
  }

  /** Ends the LISTEN connection (the store ends the pool). */
  close(): Promise<void> {
    return this.#listener.close();
  }

  /** For tests: the backend pid of the LISTEN connection, or undefined while it is down. */
  listenerPid(): number | undefined {
    return this.#listener.pid();
  }

  async #busy<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.#inUse.set(name, (this.#inUse.get(name) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      const n = this.#inUse.get(name)! - 1;
      if (n === 0) this.#inUse.delete(name);
      else this.#inUse.set(name, n);
    }
  }

  async #holding<T>(name: string, lockSql: string, fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> {
    const key = lockKey(name);
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      const { rows } = await client.query<{ ok: boolean | string }>(lockSql, [key]);
      // pg_advisory_lock returns void (''), pg_try_advisory_lock a boolean.
      if (rows[0]?.ok === false) return { ran: false };
      try {
        return { ran: true, value: await fn() };
      } finally {
        await client.query('SELECT pg_advisory_unlock($1::bigint)', [key]).catch((err: Error) => { broken = err; });
      }
    } catch (err) {
      broken ??= err as Error;
      throw err;
    } finally {
      // A connection whose unlock failed may still hold the lock: destroy it rather than reuse it.
      client.release(broken);
    }
  }
}

/** The one LISTEN connection of a store: subscribers per channel, reconnect with backoff, onGap after a reconnect. */
class PgListener {
  readonly #config: pg.ClientConfig;
  readonly #channels = new Map<string, Set<Subscriber>>();
  #client: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  #retry: NodeJS.Timeout | undefined;
  #backoff = RECONNECT_MIN_MS;
  #closed = false;
  /** True once a connection was lost: the next one that comes up calls onGap. */
  #lost = false;

  constructor(config: pg.ClientConfig) {
    this.#config = config;
  }

  pid(): number | undefined {
    return (this.#client as unknown as { processID?: number } | undefined)?.processID;
  }

  async subscribe(channel: string, sub: Subscriber): Promise<Subscription> {
    if (this.#closed) throw new Error('the store is closed');
    let subs = this.#channels.get(channel);
    const first = !subs;
    if (!subs) {
      subs = new Set();
      this.#channels.set(channel, subs);
    }
    subs.add(sub);
    try {
      if (!this.#client) await this.#connect();
      else if (first) await this.#client.query(`LISTEN ${channel}`);
    } catch (err) {
      // Down already: the reconnect LISTENs to every channel and calls onGap; only a failure on
      // the very first connection (the database unreachable) is the caller's to see.
      if (!this.#lost) {
        this.#remove(channel, sub);
        throw err;
      }
    }
    return { close: async () => this.#remove(channel, sub, true) };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    const c = this.#client;
    this.#client = undefined;
    await c?.end().catch(() => {});
  }

  async #remove(channel: string, sub: Subscriber, unlisten = false): Promise<void> {
    const subs = this.#channels.get(channel);
    if (!subs?.delete(sub) || subs.size > 0) return;
    this.#channels.delete(channel);
    if (unlisten) await this.#client?.query(`UNLISTEN ${channel}`).catch(() => {});
  }

  #connect(): Promise<void> {
    this.#connecting ??= this.#open().finally(() => { this.#connecting = undefined; });
    return this.#connecting;
  }

  async #open(): Promise<void> {
    const client = new pg.Client(this.#config);
    client.on('error', () => this.#dropped(client));
    client.on('end', () => this.#dropped(client));
    client.on('notification', (n) => {
      for (const s of this.#channels.get(n.channel) ?? []) s.onMessage(n.payload ?? '');
    });
    try {
      await client.connect();
      for (const channel of this.#channels.keys()) await client.query(`LISTEN ${channel}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    this.#backoff = RECONNECT_MIN_MS;
    if (this.#lost) {
      this.#lost = false;
      for (const subs of this.#channels.values()) for (const s of subs) s.onGap?.();
    }
  }

  #dropped(client: pg.Client): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    client.end().catch(() => {});
    this.#lost = true;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed || this.#retry) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#connect().catch(() => {
        this.#backoff = Math.min(this.#backoff * 2, RECONNECT_MAX_MS);
        this.#schedule();
      });
    }, this.#backoff);
    this.#retry.unref();
  }
}
