import type { ServerResponse } from 'node:http';
import type { Coordination, Subscription } from '../../store/coordination.js';
import { compareVersions } from '../../protocol/version.js';
import { parseReleaseNotice, pushFrame, type PushByeReason, type ReleaseNotice } from '../../protocol/push.js';
import { ApiError } from '../api-error.js';
import type { Clock } from '../clock.js';
import type { ReleaseService } from './releases.js';
import type { ScheduleService } from './schedules.js';

export interface PushOptions {
  /** Open event streams in this process at most (`serve --max-streams`); one more is refused with 503. */
  maxStreams: number;
  /** A comment line this often keeps proxies from closing a quiet stream. */
  heartbeatMs: number;
}

export const PUSH_DEFAULTS: PushOptions = { maxStreams: 3000, heartbeatMs: 25_000 };

/**
 * Without a schedule, a `release` event asks the devices of one process to spread their checks
 * so that it receives about this many a second (10,000 streams: over 20 s).
 */
export const PUSH_CHECKS_PER_SECOND = 500;
/** Bytes queued unread on a stream before it is cut: a device that stopped reading holds no memory. */
const MAX_BACKLOG_BYTES = 64 * 1024;
/** Seconds a refused device should wait before it tries to open a stream again. */
const RETRY_AFTER_SECONDS = 60;
/** Longest timer Node keeps (about 24.8 days); a token's end further out is clamped to it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Stream {
  deviceId: string;
  deviceKey: string;
  channelKey: string;
  res: ServerResponse;
  expiry: NodeJS.Timeout;
  keyId: string;
  issuedAt: number;
  expiresAt: number;
}

export interface OpenStream {
  deviceId: string;
  product: string;
  channel: string;
  /** The device token's end (epoch ms): the stream ends then and the device re-authenticates. */
  expiresAt: number;
  /** The token's key and issue time: a revocation that refuses the token ends the stream too. */
  keyId: string;
  issuedAt: number;
}

const keyOf = (product: string, name: string) => `${product}\u0000${name}`;

/**
 * The event streams of this process (docs/protocol.md, "GET /v1/events"): at most one per
 * device, at most `maxStreams` in all. Every process listens to the store's `release`
 * notifications and tells its own streams of that product and channel, once its release cache
 * offers the release (re-reading the channel when the notice came from another process), so a
 * device's check right after the event finds it.
 */
export class PushHub {
  readonly #byDevice = new Map<string, Stream>();
  readonly #byChannel = new Map<string, Set<Stream>>();
  /** The version last announced (or said in `hello`) per channel with streams: resync tells only news. */
  readonly #told = new Map<string, string>();
  #heartbeat: NodeJS.Timeout | undefined;
  #subscription: Subscription | undefined;
  #closed = false;

  constructor(
    private readonly coordination: Coordination,
    private readonly releases: ReleaseService,
    private readonly schedules: ScheduleService,
    private readonly now: Clock,
    private readonly o: PushOptions,
    private readonly warn: (obj: object, msg: string) => void,
  ) {}

  /**
   * Set by the rollout service (rollouts.ts): false when a staged rollout does not offer `version`
   * to this device now, so a release is announced only to the devices its current phase holds
   * (the others wake when their phase opens, from their check answer).
   */
  offeredTo: ((deviceId: string, product: string, channel: string, version: string) => boolean) | undefined;

  get size(): number {
    return this.#byDevice.size;
  }

  /** Listens to release notices and starts the heartbeat. */
  async start(): Promise<void> {
    this.#subscription = await this.coordination.listen('release', (p) => void this.onNotice(p), () => void this.resync());
    // One timer for all streams, not one each: 10,000 streams cost one wake-up per heartbeat.
    this.#heartbeat = setInterval(() => this.beat(), this.o.heartbeatMs);
    this.#heartbeat.unref();
  }

  /** Throws 503 PW_TOO_MANY_STREAMS when a new stream for this device would pass the cap (a device's own replaces its old one). */
  admit(deviceId: string, product: string): void {
    if (this.#closed) throw new ApiError('PW_TOO_MANY_STREAMS', 'the server is shutting down: retry after Retry-After seconds; the device keeps its schedule', { retryAfterSeconds: RETRY_AFTER_SECONDS });
    const replaces = this.#byDevice.has(keyOf(product, deviceId));
    if (!replaces && this.#byDevice.size >= this.o.maxStreams) {
      throw new ApiError('PW_TOO_MANY_STREAMS', `this server holds ${this.#byDevice.size} event streams, the most it allows (serve --max-streams ${this.o.maxStreams}): retry after ${RETRY_AFTER_SECONDS} s; meanwhile the device checks on its schedule`, {
        retryAfterSeconds: RETRY_AFTER_SECONDS,
      });
    }
  }

  /** Opens the stream on `res` (call `admit` first): headers, `hello`, and the end at the token's expiry. */
  open(res: ServerResponse, s: OpenStream): void {
    // The device hung up while its token was checked: its 'close' came already, so a stream
    // registered now would hold a --max-streams slot until the next heartbeat.
    if (res.destroyed || !res.socket || res.socket.destroyed) return;
    const deviceKey = keyOf(s.product, s.deviceId);
    const old = this.#byDevice.get(deviceKey);
    if (old) this.end(old, 'replaced');
    const now = this.now().getTime();
    const stream: Stream = {
      deviceId: s.deviceId,
      deviceKey,
      channelKey: keyOf(s.product, s.channel),
      res,
      expiry: setTimeout(() => this.end(stream, 'token-expired'), Math.min(Math.max(s.expiresAt - now, 0), MAX_TIMER_MS)),
      keyId: s.keyId,
      issuedAt: s.issuedAt,
      expiresAt: s.expiresAt,
    };
    stream.expiry.unref();
    this.#byDevice.set(deviceKey, stream);
    let set = this.#byChannel.get(stream.channelKey);
    if (!set) this.#byChannel.set(stream.channelKey, (set = new Set()));
    set.add(stream);
    res.once('close', () => this.forget(stream));
    // No idle or inactivity timeout for a stream (the heartbeat and the token's end bound it);
    // TCP keep-alive finds a peer that vanished without a word.
    res.socket?.setTimeout(0);
    res.socket?.setKeepAlive(true, 60_000);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // One stream per connection: its end closes the socket, so shutdown never waits on it.
      connection: 'close',
      // Proxies such as nginx would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    const latest = this.releases.latestOf(s.product, s.channel)?.version ?? null;
    if (latest !== null && !this.#told.has(stream.channelKey)) this.#told.set(stream.channelKey, latest);
    this.write(stream, pushFrame('hello', {
      product: s.product, channel: s.channel, latest, spreadSeconds: this.spreadOf(s.product, s.channel),
      heartbeatSeconds: Math.round(this.o.heartbeatMs / 1000), expiresAt: new Date(s.expiresAt).toISOString(),
    }));
  }

  /**
   * A revocation (re-bind, reject, remove; made by any process of the database) that refuses the
   * token a stream was opened with ends that stream as its token's end would: the device must
   * authenticate again, which a rejected or removed device cannot (found by an attacker: a
   * rejected device kept hearing of releases until its token ran out, up to --device-token-ttl).
   */
  revoked(deviceId: string, product: string, keepKeyId: string | null, at: number): void {
    const s = this.#byDevice.get(keyOf(product, deviceId));
    if (s && s.issuedAt <= at && s.keyId !== keepKeyId) this.end(s, 'token-expired');
  }

  /** Sends `release` to every stream of the product and channel. */
  announce(product: string, channel: string, version: string): void {
    const key = keyOf(product, channel);
    const set = this.#byChannel.get(key);
    if (!set || set.size === 0) return;
    this.#told.set(key, version);
    const frame = pushFrame('release', { product, channel, version, spreadSeconds: this.spreadOf(product, channel) });
    for (const s of [...set]) if (!this.offeredTo || this.offeredTo(s.deviceId, product, channel, version)) this.write(s, frame);
  }

  /** The channel's schedule spread, or without a schedule one that keeps this process near PUSH_CHECKS_PER_SECOND. */
  private spreadOf(product: string, channel: string): number {
    const schedule = this.schedules.get(product, channel);
    if (schedule) return schedule.spreadSeconds;
    return Math.ceil((this.#byChannel.get(keyOf(product, channel))?.size ?? 0) / PUSH_CHECKS_PER_SECOND);
  }

  /**
   * Ends every stream (server shutdown: app.close calls it first, so it waits on none of them),
   * refuses new ones and stops listening. Safe to call twice.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    for (const s of [...this.#byDevice.values()]) this.end(s, 'shutdown');
    await this.#subscription?.close();
    this.#subscription = undefined;
  }

  private async onNotice(payload: string): Promise<void> {
    const n = parseReleaseNotice(payload);
    if (!n) return this.warn({ payload: payload.slice(0, 200) }, 'ignored a malformed release notice');
    if (!this.#byChannel.get(keyOf(n.product, n.channel))?.size) return;
    try {
      if (!this.offers(n)) await this.releases.refreshChannel(n.product, n.channel);
    } catch (err) {
      return this.warn({ err, ...n }, 'reading a channel announced by another server process failed: its devices find the release at their next scheduled check');
    }
    // Not offered even now: yanked meanwhile, or an older notice than what the cache has moved past.
    if (this.offers(n)) this.announce(n.product, n.channel, n.version);
  }

  /** True when this process's release cache offers the notice's version (or a higher one). */
  private offers(n: ReleaseNotice): boolean {
    const latest = this.releases.latestOf(n.product, n.channel);
    return latest !== undefined && compareVersions(latest.version, n.version) >= 0;
  }

  /**
   * Notices may have been lost (the store's listening connection dropped), or the cache was
   * reloaded (a mirror's replication pass): each channel with streams is re-read and its latest
   * announced when it is not what the streams were last told.
   */
  async resync(): Promise<void> {
    for (const key of [...this.#byChannel.keys()]) {
      const [product, channel] = key.split('\u0000') as [string, string];
      try {
        const latest = await this.releases.refreshChannel(product, channel);
        if (latest && this.#told.get(key) !== latest.version) this.announce(product, channel, latest.version);
      } catch (err) {
        this.warn({ err, product, channel }, 'reading a channel after missed notifications failed: its devices find new releases at their next scheduled check');
      }
    }
  }

  /**
   * The heartbeat also ends streams whose token ended by the server's clock: the timer set at
   * open counts elapsed time, so a clock stepped forward (NTP, a resumed VM) would otherwise
   * leave a stream open past its token's end (found by an attacker).
   */
  private beat(): void {
    const now = this.now().getTime();
    for (const s of [...this.#byDevice.values()]) {
      if (s.expiresAt <= now) this.end(s, 'token-expired');
      else this.write(s, ':\n\n');
    }
  }

  private write(s: Stream, frame: string): void {
    if (s.res.destroyed) return this.forget(s);
    // A device that stopped reading is cut, not buffered for.
    if (s.res.writableLength > MAX_BACKLOG_BYTES) {
      s.res.destroy();
      return this.forget(s);
    }
    s.res.write(frame);
  }

  private end(s: Stream, reason: PushByeReason): void {
    this.forget(s);
    if (s.res.destroyed || s.res.writableEnded) return;
    s.res.end(pushFrame('bye', { reason }));
  }

  private forget(s: Stream): void {
    clearTimeout(s.expiry);
    if (this.#byDevice.get(s.deviceKey) === s) this.#byDevice.delete(s.deviceKey);
    const set = this.#byChannel.get(s.channelKey);
    if (set?.delete(s) && set.size === 0) {
      this.#byChannel.delete(s.channelKey);
      this.#told.delete(s.channelKey);
    }
  }
}
