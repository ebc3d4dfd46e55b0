import { readFile, rm } from 'node:fs/promises';
import { normaliseServerUrl, targetUrl, type MovedNotice } from '../../protocol/index.js';
import { downloadTarget } from '../download.js';
import { MovedNoticeError, VerificationError } from '../errors.js';
import { TrustedRepository, TufVerificationError } from '../tuf-client.js';

/** A moved notice is a few hundred bytes; anything much larger is refused before downloading. */
const MAX_NOTICE_BYTES = 64 * 1024;

export interface VerifyMovedOptions {
  /** The server that announced the move. */
  server: string;
  product: string;
  repo: TrustedRepository;
  /** The answer's unsigned hint: which target holds the notice. */
  target: string;
  downloadsDir: string;
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

/**
 * Verifies a moved notice through TUF (the notice is a signed target with custom kind `moved`
 * for this product; its bytes must match the signed hash) and returns the new server address,
 * normalised. Throws MovedNoticeError for an unsigned, malformed or foreign notice; network
 * failures pass through as NetworkError/ServerError (the move is retried at the next check).
 */
export async function verifyMovedNotice(opts: VerifyMovedOptions): Promise<string> {
  const { server, product, target, signal } = opts;
  const fail = (what: string, cause?: unknown): never => {
    throw new MovedNoticeError(`the moved notice from ${server} is refused: ${what}; the agent stays with ${server} (ask the operator to publish the notice with \`patchwire move\`)`, server, { cause });
  };
  let verified;
  try {
    verified = await opts.repo.getTarget(target, signal);
  } catch (err) {
    if (err instanceof TufVerificationError) fail(`its TUF metadata does not verify (${err.message})`, err);
    throw err;
  }
  if (!verified) return fail(`no signed target ${JSON.stringify(target)} exists`);
  const custom = (verified.custom as { patchwire?: { kind?: unknown; product?: unknown; url?: unknown } }).patchwire;
  if (custom?.kind !== 'moved') return fail(`signed target ${target} is not a moved notice`);
  if (custom.product !== product) fail(`it is signed for product ${String(custom.product)}, not ${product}`);
  if (verified.length > MAX_NOTICE_BYTES) fail(`it is ${verified.length} bytes long, more than ${MAX_NOTICE_BYTES}`);

  let file: string;
  try {
    file = await downloadTarget({
      url: targetUrl(server, product, verified.path, verified.sha256),
      downloadsDir: opts.downloadsDir,
      sha256: verified.sha256,
      length: verified.length,
      fetch: opts.fetch,
      signal,
    });
  } catch (err) {
    if (err instanceof VerificationError) fail(`its bytes do not match the signed hash (${err.message})`, err);
    throw err;
  }
  let notice: Partial<MovedNotice>;
  try {
    notice = JSON.parse(await readFile(file, 'utf8')) as Partial<MovedNotice>;
  } catch (err) {
    return fail('it is not JSON', err);
  } finally {
    await rm(file, { force: true });
  }
  if (typeof notice !== 'object' || notice === null) return fail('it is not a JSON object');
  if (notice.product !== product) fail(`it names product ${String(notice.product)}, not ${product}`);
  const url = normaliseServerUrl(notice.url);
  if (!url) return fail(`its URL ${JSON.stringify(notice.url)} is not an http(s) URL without query or fragment`);
  if (custom.url !== undefined && normaliseServerUrl(custom.url) !== url) fail('the URL in the notice differs from the signed URL in its target');
  return url;
}
