import { isDeltaTargetPath, isVersion, type CheckResponse } from '../protocol/index.js';
import { BadResponseError } from './errors.js';

/**
 * Validates a `/v1/check` answer and returns it typed. Fields the agent does not use are not
 * checked; a missing nullable field counts as null. Throws BadResponseError naming the field.
 */
export function parseCheckResponse(value: unknown, url: string, expect: { product: string; channel: string }): CheckResponse {
  const bad = (what: string): never => {
    throw new BadResponseError(`the check answer of ${url} is invalid: ${what}; check that the server runs a compatible patchwire version`, url);
  };
  if (!isObject(value)) return bad('not a JSON object');
  const v = value;
  if (v.status !== 'update' && v.status !== 'up-to-date' && v.status !== 'deferred') bad(`unknown status ${JSON.stringify(v.status)}`);
  if (v.product !== expect.product || v.channel !== expect.channel) bad(`it is for ${String(v.product)}/${String(v.channel)}, not ${expect.product}/${expect.channel}`);
  const latest = v.latest ?? null;
  if (latest !== null && !isVersion(latest)) bad('"latest" is not a version');

  let release: CheckResponse['release'] = null;
  if (v.release != null) {
    const r = v.release;
    if (!isObject(r)) return bad('"release" is not an object');
    if (!isVersion(r.version)) bad('"release.version" is not a version');
    if (typeof r.target !== 'string' || r.target === '' || r.target.length > 1024) bad('"release.target" is not a target path');
    if (r.kind !== 'full' && r.kind !== 'delta') bad('"release.kind" must be "full" or "delta"');
    release = {
      version: r.version as string,
      target: r.target as string,
      length: typeof r.length === 'number' ? r.length : 0,
      sha256: typeof r.sha256 === 'string' ? r.sha256 : '',
      kind: r.kind as 'full' | 'delta',
      delta: null,
    };
    // A delta offer is only a hint (verified through TUF later); a malformed one is ignored.
    const d = r.delta;
    if (isObject(d) && isVersion(d.from) && typeof d.target === 'string' && isDeltaTargetPath(d.target) && d.target.length <= 1024
      && typeof d.sha256 === 'string' && /^[0-9a-f]{64}$/.test(d.sha256) && Number.isSafeInteger(d.length) && (d.length as number) > 0) {
      release.delta = { from: d.from as string, target: d.target, length: d.length as number, sha256: d.sha256 };
    }
  }
  if (v.status === 'update' && !release) bad('status is "update" but "release" is missing');

  let schedule: CheckResponse['schedule'] = null;
  if (v.schedule != null) {
    const s = v.schedule;
    if (!isObject(s)) return bad('"schedule" is not an object');
    if (typeof s.at !== 'string' || Number.isNaN(Date.parse(s.at))) bad('"schedule.at" is not an ISO-8601 time');
    const spread = s.spreadSeconds ?? 0;
    if (!Number.isSafeInteger(spread) || (spread as number) < 0) bad('"schedule.spreadSeconds" is not a whole number >= 0');
    schedule = { at: s.at as string, spreadSeconds: spread as number };
  }

  let rollout: CheckResponse['rollout'] = null;
  if (v.rollout != null) {
    const r = v.rollout;
    if (!isObject(r) || !isVersion(r.version)) return bad('"rollout" must be { version, opensAt, spreadSeconds }');
    const opensAt = r.opensAt ?? null;
    if (opensAt !== null && (typeof opensAt !== 'string' || Number.isNaN(Date.parse(opensAt)))) bad('"rollout.opensAt" is not an ISO-8601 time');
    const spread = r.spreadSeconds ?? 0;
    if (!Number.isSafeInteger(spread) || (spread as number) < 0) bad('"rollout.spreadSeconds" is not a whole number >= 0');
    rollout = { version: r.version as string, opensAt: opensAt as string | null, spreadSeconds: spread as number };
  }
  if (v.status === 'deferred' && !rollout) bad('status is "deferred" but "rollout" is missing');

  let moved: CheckResponse['moved'] = null;
  if (v.moved != null) {
    const m = v.moved;
    if (!isObject(m) || typeof m.url !== 'string' || typeof m.target !== 'string' || m.target === '') return bad('"moved" must be { url, target }');
    moved = { url: m.url, target: m.target };
  }
  return {
    status: v.status as CheckResponse['status'],
    product: expect.product,
    channel: expect.channel,
    latest: latest as string | null,
    release,
    schedule,
    rollout,
    moved,
    serverTime: typeof v.serverTime === 'string' ? v.serverTime : '',
    // Kept as sent: verify-answer.ts checks every field of it before anything relies on it.
    ...(v.signed !== undefined ? { signed: v.signed as CheckResponse['signed'] } : {}),
    // Shown to the operator as they are: kept short and few.
    ...(Array.isArray(v.warnings) ? { warnings: v.warnings.filter((w): w is string => typeof w === 'string').slice(0, 10).map((w) => w.slice(0, 1000)) } : {}),
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
