import type { IncomingMessage } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { eventsUrl } from '../../protocol/urls.js';
import { isVersion } from '../../protocol/version.js';
import { MAX_PUSH_SPREAD_SECONDS, type PushByeReason } from '../../protocol/push.js';
import { errorText } from '../../util/error-text.js';
import { authenticateDevice, cachedToken } from '../auth-fetch.js';
import { readDeviceKey } from '../device-key.js';
import { parseJsonAnswer } from '../http-json.js';
import { agentPaths } from '../paths.js';
import { loadState } from '../state.js';
import { TokenCache } from '../token-cache.js';
import { openRequest, postJsonLight, readSmall, statusOf } from './light-http.js';
import { SseReader, type SseEvent } from './sse-reader.js';

/** What a stream told: the channel has `version`; check within `spreadSeconds` (each device at its own offset). */
export interface PushAnnouncement {
  version: string;
  spreadSeconds: number;
}

export interface PushListenerOptions {
  dir: string;
  /** Aborting it closes the stream and ends the listener. */
  signal: AbortSignal;
  now: () => Date;
  log: (line: string) => void;
  /** Called for every release the stream announces, and for the latest it names when it opens. */
  onRelease: (a: PushAnnouncement) => void;
  /** In [0, 1): the jitter of reconnect waits (tests may fix it). */
  random?: () => number;
}

/** Reconnect waits: start at 1 s, double per failure up to 5 min, each with jitter; reset by a stream that lived 60 s. */
export const PUSH_RETRY = { firstMs: 1000, maxMs: 300_000, stableMs: 60_000, maxRetryAfterMs: 3_600_000 };
/** Silence for this many heartbeats means a dead stream (a proxy that dropped it without a word). */
const MISSED_HEARTBEATS = 3;
/** The heartbeat assumed until the server's `hello` names its own; the server's is clamped into [5 s, 5 min]. */
const DEFAULT_HEARTBEAT_S = 30;

type Outcome = { ended: PushByeReason | 'dropped'; retryAfterMs?: number } | { failed: string; retryAfterMs?: number };

/**
 * Holds the device's event stream (GET /v1/events) open until `signal` aborts: reads the state
 * for the server, product and channel at each connect (a followed moved notice takes effect),
 * authenticates with the folder's device key (never making one: the first check does, under
 * the folder lock) and reconnects with capped exponential backoff and jitter. It only ever calls
 * `onRelease`; what to install still comes from a signed check. It never throws.
 */
export async function listenForReleases(o: PushListenerOptions): Promise<void> {
  const random = o.random ?? Math.random;
  let backoff = PUSH_RETRY.firstMs;
  let down: string | undefined = 'starting';
  while (!o.signal.aborted) {
    const started = Date.now();
    const out = await streamOnce(o, () => {
      if (down !== undefined) o.log(`${o.now().toISOString()} push: event stream open (a release is checked for at once)`);
      down = undefined;
    }).catch((err: unknown): Outcome => ({ failed: errorText(err) }));
    if (o.signal.aborted) break;
    const lived = Date.now() - started;
    if (lived >= PUSH_RETRY.stableMs) backoff = PUSH_RETRY.firstMs;
    let waitMs: number;
    if ('ended' in out && out.ended === 'token-expired' && lived >= PUSH_RETRY.stableMs) {
      // The token's planned end: re-authenticate and come back at once (jitter: not a whole fleet in one instant).
      waitMs = random() * 1000;
    } else {
      waitMs = backoff / 2 + (random() * backoff) / 2;
      backoff = Math.min(backoff * 2, PUSH_RETRY.maxMs);
    }
    if (out.retryAfterMs !== undefined) waitMs = Math.max(waitMs, Math.min(out.retryAfterMs, PUSH_RETRY.maxRetryAfterMs));
    const why = 'failed' in out ? out.failed : `the stream ended (${out.ended})`;
    if (down === undefined || ('failed' in out && down !== why)) {
      o.log(`${o.now().toISOString()} push: ${why}; checking on schedule, reconnecting in ${Math.round(waitMs / 1000)} s`);
    }
    down = why;
    await delay(waitMs, undefined, { signal: o.signal }).catch(() => {});
  }
}

/** One connection: resolves when it ends, however it ends. */
async function streamOnce(o: PushListenerOptions, opened: () => void): Promise<Outcome> {
  const paths = agentPaths(o.dir);
  const state = await loadState(paths.state);
  const key = await readDeviceKey(paths.meta);
  if (!key) return { failed: 'no device key yet (the first check makes it)' };
  const cache = new TokenCache(paths.meta);
  const id = { meta: paths.meta, deviceId: state.deviceId, product: state.product, channel: state.channel, now: o.now };
  const token = (await cachedToken(cache, state.server, o.now())) ?? (await authenticateDevice(postJsonLight, cache, id, state.server, key, o.signal));
  const url = eventsUrl(state.server, { deviceId: state.deviceId, product: state.product, channel: state.channel });
  const res = await openRequest(url, { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: o.signal });
  if (res.statusCode !== 200) {
    const text = await readSmall(res).catch(() => '');
    // A refused token is dropped, so the next attempt authenticates anew.
    if (res.statusCode === 401) await cache.put(state.server, undefined);
    const retryAfter = Number(res.headers['retry-after']);
    const retryAfterMs = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined;
    try {
      parseJsonAnswer(statusOf(res), url, text);
    } catch (err) {
      return { failed: errorText(err), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
    }
    return { failed: `the server at ${url} answered ${res.statusCode} instead of an event stream` };
  }
  if (!String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    res.destroy();
    return { failed: `the server at ${url} answered something that is not an event stream: check that it is a patchwire server` };
  }
  opened();
  return readStream(res, o, state);
}

/** Reads events until the stream ends, is silent too long, or breaks a limit. */
function readStream(res: IncomingMessage, o: PushListenerOptions, state: { product: string; channel: string }): Promise<Outcome> {
  return new Promise((resolve) => {
    const reader = new SseReader();
    let ended: PushByeReason | undefined;
    let silenceMs = DEFAULT_HEARTBEAT_S * MISSED_HEARTBEATS * 1000;
    let timer = setTimeout(() => dead(), silenceMs);
    const dead = () => {
      res.destroy();
      finish({ failed: `the event stream was silent for ${silenceMs / 1000} s` });
    };
    let done = false;
    const finish = (out: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(out);
    };
    const onEvent = (e: SseEvent) => {
      let data: Record<string, unknown>;
      try {
        data = JSON.parse(e.data) as Record<string, unknown>;
      } catch {
        return; // Not ours; the stream itself is still good.
      }
      if (typeof data !== 'object' || data === null) return;
      if (e.event === 'bye' && typeof data.reason === 'string') ended = data.reason as PushByeReason;
      if (data.product !== undefined && (data.product !== state.product || data.channel !== state.channel)) return;
      if (e.event === 'hello') {
        const hb = Number(data.heartbeatSeconds);
        if (Number.isFinite(hb)) silenceMs = Math.min(Math.max(hb, 5), 300) * MISSED_HEARTBEATS * 1000;
        if (typeof data.latest === 'string' && isVersion(data.latest)) o.onRelease({ version: data.latest, spreadSeconds: spreadOf(data.spreadSeconds) });
      } else if (e.event === 'release' && typeof data.version === 'string' && isVersion(data.version)) {
        o.onRelease({ version: data.version, spreadSeconds: spreadOf(data.spreadSeconds) });
      }
    };
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      clearTimeout(timer);
      timer = setTimeout(() => dead(), silenceMs);
      let events: SseEvent[];
      try {
        events = reader.push(chunk);
      } catch (err) {
        res.destroy();
        return finish({ failed: errorText(err) });
      }
      for (const e of events) onEvent(e);
    });
    res.once('end', () => finish({ ended: ended ?? 'dropped' }));
    res.once('close', () => finish({ ended: ended ?? 'dropped' }));
    res.once('error', () => finish({ ended: ended ?? 'dropped' }));
  });
}

/** A spread as the server sent it, bounded (a hostile server must not make the device wait for ever or never). */
function spreadOf(v: unknown): number {
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? Math.min(Math.floor(n), MAX_PUSH_SPREAD_SECONDS) : 0;
}
