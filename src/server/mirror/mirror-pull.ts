import type { MirrorRecord, Store } from '../../store/store.js';
import { MIRROR_PREFIX } from '../../protocol/urls.js';
import type { DeviceRecord } from '../../store/store.js';
import type { DeviceSyncPage } from './device-sync.js';
import { COMPACT_FORMAT } from '../../protocol/wire.js';
import { peerJson } from './peer-client.js';
import { MAX_CURSOR_LENGTH, type PullLimits } from './limits.js';
import type { RecordRules, SkipTally } from './record-rules.js';
import type { MirrorIdentity } from './mirror-identity.js';

export interface PullContext {
  store: Store;
  token: string;
  now: () => Date;
  limits: PullLimits;
  rules: RecordRules;
  /** Where refused records are counted. */
  tally: SkipTally;
  /** Which records the keys they are bound to at the mirror let through. */
  identities: MirrorIdentity;
  /** Called after each page is merged, with the records of it merged (a job's progress). */
  onPage?: (merged: number) => void;
}

/** What one pull did: the records merged, and whether the mirror answered in format 2 (then it is pushed in format 2). */
export interface PullResult {
  pulled: number;
  compact: boolean;
}

/**
 * Pulls an approved mirror's device records changed after its cursor, page by page, merging the
 * valid records of each page that the device's key lets through (mirror-identity.ts; the others
 * are counted in `tally`), within `limits`: a page with
 * more records or bytes than allowed fails the pull, and so does a run past `maxPages` (the
 * cursor of the last page merged is kept, so the next run resumes there). The cursor is the
 * mirror's own (made by its store); it is kept and sent back unread. Pages are asked for in
 * format 2 (records as arrays); a mirror from before it answers format 1, read as before.
 * Records merged exactly as the mirror sent them, under the key and status it has bound too,
 * are marked as held by that mirror's store (Store.mergeDevices `heldBy`): the push does not
 * send them back. Returns the records merged, and the format the mirror answered in.
 */
export async function pullMirror(m: MirrorRecord, c: PullContext): Promise<PullResult> {
  const { pageRecords, pageMaxBytes, maxPages } = c.limits;
  const fetchPage = (after: string | null) => {
    const q = new URLSearchParams({ limit: String(pageRecords), format: String(COMPACT_FORMAT) });
    if (after !== null) q.set('after', after);
    const p = peerJson<DeviceSyncPage & { format?: unknown }>(`${m.url}${MIRROR_PREFIX}/devices?${q}`, { token: c.token, maxBytes: pageMaxBytes });
    p.catch(() => {}); // awaited below, or dropped when the pull stopped before it
    return p;
  };
  let after = m.cursor;
  let pulled = 0;
  let compact = true;
  let ahead = fetchPage(after);
  for (let pages = 0; ; pages++) {
    if (pages === maxPages) {
      throw new Error(`${m.url} still had device pages after ${maxPages} pages in one run; stopped (a mirror sends at most ${maxPages * pageRecords} changed records per run), the next run resumes after the last page merged`);
    }
    const page = await ahead;
    if (!page || !Array.isArray(page.records) || (page.next !== null && (typeof page.next !== 'string' || page.next.length > MAX_CURSOR_LENGTH))) {
      throw new Error(`${m.url} answered a device page that is not { records, next } (next: a cursor of at most ${MAX_CURSOR_LENGTH} characters, or null)`);
    }
    if (page.records.length > pageRecords) {
      throw new Error(`${m.url} answered ${page.records.length} records for a page of at most ${pageRecords}; refused, nothing of it was merged`);
    }
    // No format: a mirror from before format 2 (records as objects); 2: records as arrays.
    if (page.format !== undefined && page.format !== COMPACT_FORMAT) {
      throw new Error(`${m.url} answered a device page of format ${JSON.stringify(page.format)?.slice(0, 20)}; this server reads format 1 (no format field) and ${COMPACT_FORMAT}; refused, nothing of it was merged`);
    }
    const pageCompact = page.format === COMPACT_FORMAT;
    compact &&= pageCompact;
    // The next page is fetched while this one merges (the mirror serialises it meanwhile): one
    // page ahead, so at most two pages are held, and never past maxPages.
    const more = page.records.length === pageRecords;
    if (more && pages + 1 < maxPages) ahead = fetchPage(page.next);
    const synced = c.rules.sort(page.records, c.now(), c.tally, pageCompact);
    const records = await c.identities.admit(synced, m.url, c.tally);
    await mergePulled(c.store, m, records, synced);
    pulled += records.length;
    // Saved per page: a sync cut off half-way resumes after the last page merged.
    if (page.next !== after) await c.store.updateMirror(m.url, { cursor: page.next });
    c.onPage?.(records.length);
    after = page.next;
    if (!more) return { pulled, compact };
  }
}

/**
 * Merges a pulled page's admitted records. Those the mirror has bound as accepted (as the primary
 * does: admit merged them only under the key it binds) are merged with `heldBy` the mirror's
 * store: a row that becomes exactly the mirror's record is not pushed back to it. A mirror that
 * never said its storeId (an older one) gets no marks, and so everything pushed, as before.
 */
async function mergePulled(store: Store, m: MirrorRecord, records: DeviceRecord[], synced: Array<{ record: DeviceRecord; status: string | null }>): Promise<void> {
  if (records.length === 0) return;
  if (m.storeId === null) {
    await store.mergeDevices(records);
    return;
  }
  const acceptedThere = new Set<DeviceRecord>();
  for (const s of synced) if (s.status === 'accepted') acceptedThere.add(s.record);
  const held = records.filter((r) => acceptedThere.has(r));
  const others = held.length === records.length ? [] : records.filter((r) => !acceptedThere.has(r));
  if (held.length) await store.mergeDevices(held, { heldBy: m.storeId });
  if (others.length) await store.mergeDevices(others);
}
