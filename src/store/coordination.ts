/**
 * What several server processes on one database share besides rows: locks that hold across every
 * process, and notifications that reach every process (this one included). A Store hands out its
 * own (Store.coordination): SQLite, whose data folder admits one server process, uses
 * LocalCoordination; PostgreSQL uses advisory locks and LISTEN/NOTIFY.
 */

import { EventEmitter } from 'node:events';
import { KeyedLock } from '../util/keyed-lock.js';

/** Notification channels; a payload is at most MAX_NOTIFY_PAYLOAD bytes of UTF-8. */
export type NotifyChannel = 'catalog' | 'release' | 'revocation';
export const MAX_NOTIFY_PAYLOAD = 7000;

export interface Subscription {
  close(): Promise<void>;
}

export interface Coordination {
  /**
   * True when other server processes may share this database (PostgreSQL): in-memory caches must
   * follow notifications, and reload periodically in case one was missed.
   */
  readonly shared: boolean;
  /** Runs `fn` holding the named lock in every process on this database, waiting for it first. */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Runs `fn` holding the named lock when it is free at once; `{ ran: false }` (fn not run) when another holds it. */
  tryLock<T>(name: string, fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }>;
  /** Delivers `payload` to every listener of `channel` in every process (this one too), after the sender's commit. */
  notify(channel: NotifyChannel, payload: string): Promise<void>;
  /**
   * Calls `onMessage` for each notification on `channel`. `onGap` is called when notifications
   * may have been lost (the listening connection dropped and came back): reload what you cache.
   */
  listen(channel: NotifyChannel, onMessage: (payload: string) => void, onGap?: () => void): Promise<Subscription>;
}

/**
 * One process: an in-process lock per name and an in-process event bus. `shared` (TEST HOOK):
 * several stores in one process share one instance and play several processes on one database.
 */
export class LocalCoordination implements Coordination {
  readonly shared: boolean;
  readonly #locks = new KeyedLock();
  readonly #held = new Set<string>();
  readonly #bus = new EventEmitter().setMaxListeners(0);

  constructor(o: { shared?: boolean } = {}) {
    this.shared = o.shared ?? false;
  }

  withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.#locks.run(name, async () => {
      this.#held.add(name);
      try {
        return await fn();
      } finally {
        this.#held.delete(name);
      }
    });
  }

  async tryLock<T>(name: string, fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> {
    if (this.#held.has(name)) return { ran: false };
    return { ran: true, value: await this.withLock(name, fn) };
  }

  async notify(channel: NotifyChannel, payload: string): Promise<void> {
    checkPayload(payload);
    // Delivered on a later tick, as a database notification would be: never inside the sender's call.
    setImmediate(() => this.#bus.emit(channel, payload));
  }

  async listen(channel: NotifyChannel, onMessage: (payload: string) => void): Promise<Subscription> {
    const handler = (p: string) => onMessage(p);
    this.#bus.on(channel, handler);
    return { close: async () => void this.#bus.off(channel, handler) };
  }
}

export function checkPayload(payload: string): void {
  if (Buffer.byteLength(payload, 'utf8') > MAX_NOTIFY_PAYLOAD) {
    throw new RangeError(`notification payload of ${Buffer.byteLength(payload, 'utf8')} bytes exceeds ${MAX_NOTIFY_PAYLOAD}; send a key and let listeners read the rest from the store`);
  }
}
