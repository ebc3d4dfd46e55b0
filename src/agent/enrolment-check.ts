import { channelsUrl, DEFAULT_CHANNEL, normaliseServerUrl } from '../protocol/index.js';
import { errorText } from '../util/error-text.js';
import { InvalidInputError } from './errors.js';

/** How long `init` waits for the server before it initialises without asking. */
const ENROLMENT_TIMEOUT_MS = 5000;

/** What the server said about an install folder's product and channel, as `init --json` prints it. */
export type EnrolmentVerdict =
  | { verdict: 'ok'; channels: string[] }
  /** The server could not be asked (offline, down, or too old to answer): initialised anyway. */
  | { verdict: 'unreachable'; message: string };

/**
 * Asks the server (`GET /v1/products/:product/channels`) whether the product exists and has the
 * channel, so a typo fails at `init` rather than at the first check or, for a channel, never.
 * Throws InvalidInputError for an unknown product or channel (naming the channels there are);
 * returns `unreachable` when no answer came, so an offline init keeps working.
 */
export async function checkEnrolment(o: { server: string; product: string; channel?: string; fetch?: typeof fetch }): Promise<EnrolmentVerdict> {
  const server = normaliseServerUrl(o.server) ?? o.server;
  const channel = o.channel ?? DEFAULT_CHANNEL;
  const url = channelsUrl(server, o.product);
  let res: Response;
  let body: unknown;
  try {
    res = await (o.fetch ?? fetch)(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(ENROLMENT_TIMEOUT_MS) });
    body = await res.json().catch(() => undefined);
  } catch (err) {
    return { verdict: 'unreachable', message: `cannot reach ${server} (${errorText(err, { cause: true })})` };
  }
  const b = body as { code?: unknown; channels?: unknown } | undefined;
  if (res.status === 404 && b?.code === 'PW_UNKNOWN_PRODUCT') {
    throw new InvalidInputError(`the server at ${server} has no product '${o.product}': check the name (it is case-sensitive), or create it with \`patchwire product create\`; nothing was written`, 'product');
  }
  if (!res.ok || !Array.isArray(b?.channels)) {
    return { verdict: 'unreachable', message: `${server} did not answer ${url} as a patchwire server does (HTTP ${res.status}; an older server has no such route)` };
  }
  const channels = b.channels.filter((c): c is string => typeof c === 'string');
  if (!channels.includes(channel)) {
    throw new InvalidInputError(`${o.product} at ${server} has no channel '${channel}' (no release on it yet); its channels: ${channels.join(', ')}. give one of them with --channel (or, to enrol devices before a channel's first release, publish or schedule it first, or pass --skip-server-check); nothing was written`, 'channel');
  }
  return { verdict: 'ok', channels };
}
