/**
 * Push (docs/protocol.md, "GET /v1/events"): the server-sent events both sides speak. The
 * stream only ever says "look now"; what to install still comes from a signed check answer, so
 * nothing in an event is secret or trusted beyond "run a check".
 */

/** `hello`: the stream is open; `release`: a new release of the device's product and channel; `bye`: the server ends the stream. */
export type PushEventName = 'hello' | 'release' | 'bye';

export interface PushHello {
  product: string;
  channel: string;
  /** The channel's latest release as this server knows it (null: none): a device behind it checks. */
  latest: string | null;
  /** As in a `release` event: the window a device behind `latest` spreads its check over. */
  spreadSeconds: number;
  /** The server sends a comment line at least this often; silence for 3x it means a dead stream. */
  heartbeatSeconds: number;
  /** When the device token ends, and with it the stream (ISO-8601). */
  expiresAt: string;
}

export interface PushRelease {
  product: string;
  channel: string;
  version: string;
  /**
   * Seconds over which the devices told should spread their checks (each waits its own
   * offset, from its device id): the channel's schedule spread, or one derived from the number
   * of streams the server fans out to.
   */
  spreadSeconds: number;
}

/** Why the server ended a stream: the token ran out (re-auth, reconnect), another stream of the device replaced it, or the server stops. */
export type PushByeReason = 'token-expired' | 'replaced' | 'shutdown';

export interface PushBye {
  reason: PushByeReason;
}

/** The notification a publish sends to every server process (Store.coordination, channel `release`). */
export interface ReleaseNotice {
  product: string;
  channel: string;
  version: string;
}

/** Longest line (and so event) either side writes or accepts, in bytes. */
export const MAX_PUSH_LINE_BYTES = 4096;
/** Longest spread a `release` event may ask for: one day. */
export const MAX_PUSH_SPREAD_SECONDS = 86_400;

/** One event as written on the stream: `event:` and one `data:` line of JSON. */
export function pushFrame(event: PushEventName, data: PushHello | PushRelease | PushBye): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** A `release` notification's payload, or undefined when it is not one (a peer's bug must not crash a listener). */
export function parseReleaseNotice(payload: string): ReleaseNotice | undefined {
  try {
    const v = JSON.parse(payload) as Partial<ReleaseNotice>;
    if (typeof v?.product === 'string' && typeof v.channel === 'string' && typeof v.version === 'string') {
      return { product: v.product, channel: v.channel, version: v.version };
    }
  } catch {
    // Not JSON: ignored below.
  }
  return undefined;
}
