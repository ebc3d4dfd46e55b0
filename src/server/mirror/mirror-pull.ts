import type { MirrorRecord, Store } from '../../store/store.js';
import { MIRROR_PREFIX } from '../../protocol/urls.js';
import type { DeviceSyncPage } from './device-sync.js';
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

/**
 * Pulls an approved mirror's device records changed after its cursor, page by page, merging the
 * valid records of each page that the device's key lets through (mirror-identity.ts; the others
 * are counted in `tally`), within `limits`: a page with
 * more records or bytes than allowed fails the pull, and so does a run past `maxPages` (the
 * cursor of the last page merged is kept, so the next run resumes there). The cursor is the
 * mirror's own (made by its store); it is kept and sent back unread. Returns the records merged.
 */
export async function pullMirror(m: MirrorRecord, c: PullContext): Promise<number> {
  const { pageRecords, pageMaxBytes, maxPages } = c.limits;
  const fetchPage = (after: string | null) => {
    const q = new URLSearchParams({ limit: String(pageRecords) });
    if (after !== null) q.set('after', after);
    const p = peerJson<DeviceSyncPage>(`${m.url}${MIRROR_PREFIX}/devices?${q}`, { token: c.token, maxBytes: pageMaxBytes });
    p.catch(() => {}); // awaited below, or dropped when the pull stopped before it
    return p;
  };
  let after = m.cursor;
  let pulled = 0;
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
    // The next page is fetched while this one merges (the mirror serialises it meanwhile): one
    // page ahead, so at most two pages are held, and never past maxPages.
    const more = page.records.length === pageRecords;
    if (more && pages + 1 < maxPages) ahead = fetchPage(page.next);
    const records = await c.identities.admit(c.rules.sort(page.records, c.now(), c.tally), m.url, c.tally);
    if (records.length) await c.store.mergeDevices(records);
    pulled += records.length;
    // Saved per page: a sync cut off half-way resumes after the last page merged.
    if (page.next !== after) await c.store.updateMirror(m.url, { cursor: page.next });
    c.onPage?.(records.length);
    after = page.next;
    if (!more) return pulled;
  }
}
