import type { DeviceBinding, DeviceRecord, MirrorRecord, Store } from '../../store/store.js';
import { COMPACT_FORMAT, type ReconcileMirrorView, type ReconcileView } from '../../protocol/wire.js';
import { MIRROR_PREFIX } from '../../protocol/urls.js';
import type { Clock } from '../clock.js';
import { peerJson } from './peer-client.js';
import { toScheduleSync } from '../views/schedule-view.js';
import type { SightingBatcher } from '../services/sighting-batcher.js';
import type { StatusService } from '../services/status.js';
import { errorText } from '../../util/error-text.js';
import { PULL_LIMITS, type PullLimits } from './limits.js';
import { RecordRules, SkipTally } from './record-rules.js';
import { pullMirror } from './mirror-pull.js';
import type { MirrorIdentity } from './mirror-identity.js';
import { toCompactSync, toDeviceSync } from '../views/device-view.js';
import { randomUUID } from 'node:crypto';
import { ReconcileJob } from './reconcile-job.js';
import { ReconcileJobs } from './reconcile-jobs.js';
import { Convoy, PUSH_PAGES_KEPT } from './push-convoy.js';

/** Records pushed per POST to a mirror. */
const PUSH_PAGE = 5000;

export interface ConsolidationOptions {
  store: Store;
  sightings: SightingBatcher;
  status: StatusService;
  /** The mirror token, sent to mirrors on every call. */
  token: string;
  now: Clock;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** The identity rule for pulled records (mirror-identity.ts). */
  identities: MirrorIdentity;
  /** Default PULL_LIMITS; smaller in tests (a test hook of `serve`). */
  limits?: PullLimits;
}

/**
 * The primary's consolidation (docs/design.md section 2): pull every APPROVED mirror's changed
 * device records (by cursor, bounded: limits.ts), validate them (record-rules.ts: an invalid
 * record is skipped and counted, never merged), merge them (highest applied version wins, then
 * latest report), raise overdue alarms, then push every record changed since the mirror's last
 * sync, and the schedules, back to each approved mirror. A pending mirror is never contacted.
 * A mirror that fails is recorded with its error and does not stop the others; the next run
 * catches it up from its cursors.
 */
export class Consolidation {
  private readonly limits: PullLimits;

  constructor(private readonly o: ConsolidationOptions) {
    this.limits = o.limits ?? PULL_LIMITS;
    this.jobs = new ReconcileJobs(this, o.store, o.now, o.log);
  }

  /** The run in progress in this process (a job), if any. */
  running: ReconcileJob | undefined;
  /** The last run that ended in this process (its progress stays readable until the next one starts). */
  last: ReconcileJob | undefined;
  /** Runs as jobs (the admin API's start and poll); each run's progress is written down for the other processes. */
  readonly jobs: ReconcileJobs;

  /** One run, waited for; a call during a run shares it. Throws what broke the run. */
  async reconcile(): Promise<ReconcileView> {
    const job = this.begin();
    await job.done;
    if (job.error !== undefined) throw new Error(job.error);
    return job.result!;
  }

  /** Starts a run as a job, or returns the one in progress in this process (`joined`). */
  begin(): ReconcileJob {
    if (this.running) return this.running;
    const job = new ReconcileJob(randomUUID(), this.o.now());
    this.running = job;
    job.done = this.run(job).then((result) => {
      job.result = result;
      job.state = 'done';
    }, (err: unknown) => {
      job.error = errorText(err);
      job.state = 'failed';
    }).finally(() => {
      job.finishedAt = job.updatedAt = this.o.now();
      this.last = job;
      this.running = undefined;
    });
    this.jobs.track(job);
    return job;
  }

  private async run(job: ReconcileJob): Promise<ReconcileView> {
    const { store } = this.o;
    const startedAt = this.o.now();
    await this.o.sightings.flush();
    const known = await store.listMirrors();
    const mirrors = known.filter((m) => m.state === 'approved');
    job.pending = known.filter((m) => m.state === 'pending').map((m) => m.url);
    for (const m of mirrors) job.mirror(m.url);
    const rules = await RecordRules.load(store, { releases: true });
    const results = new Map<string, ReconcileMirrorView & { tally: SkipTally }>();
    for (const m of mirrors) results.set(m.url, { url: m.url, pulled: 0, pushed: 0, skipped: 0, tally: new SkipTally() });
    // Mirrors that answered their pull in format 2 are pushed in it too (the others: format 1).
    const compact = new Set<string>();
    // The mirrors are pulled at the same time: each serialises its pages while the primary merges
    // another's (merging is order-free: record-rules and mergeDevice pick the same winner).
    await Promise.all(mirrors.map(async (m) => {
      const r = results.get(m.url)!;
      const p = job.mirror(m.url);
      p.phase = 'pulling';
      job.updatedAt = this.o.now();
      try {
        const pull = await pullMirror(m, {
          store, token: this.o.token, now: this.o.now, limits: this.limits, rules, tally: r.tally, identities: this.o.identities,
          onPage: (merged) => {
            p.pulledPages++;
            p.pulled += merged;
            p.skipped = r.tally.count;
            job.updatedAt = this.o.now();
          },
        });
        r.pulled = pull.pulled;
        if (pull.compact) compact.add(m.url);
      } catch (err) {
        r.error = p.error = errorText(err);
        p.phase = 'failed';
      }
      p.skipped = r.tally.count;
    }));
    // Step 3: alarms are judged on the merged view, before the schedules go out.
    this.o.status.alarms();
    const schedules = (await store.listSchedules()).map(toScheduleSync);
    // The mirrors are pushed to at the same time, sharing the pages they need alike (pushPages):
    // on a first sync each page is read and serialised once, not once per mirror, and the primary
    // prepares a page while the mirrors merge the last one.
    const pages = new PushPages(store);
    // Mirrors that start from the same cursor read the same pages: they keep within PUSH_LEAD
    // pages of each other (Convoy), so each page is read once, not again by the ones behind.
    const convoys = new Map<string, Convoy>();
    for (const m of mirrors) {
      if (results.get(m.url)!.error) continue;
      const k = m.pushCursor ?? '';
      if (!convoys.has(k)) convoys.set(k, new Convoy());
      convoys.get(k)!.join(m.url);
    }
    await Promise.all(mirrors.map(async (m) => {
      const r = results.get(m.url)!;
      const p = job.mirror(m.url);
      if (!r.error) {
        p.phase = 'pushing';
        const convoy = convoys.get(m.pushCursor ?? '')!;
        try {
          r.pushed = await this.push(m, compact.has(m.url), pages, () => convoy.advance(m.url), (count) => {
            p.pushedPages++;
            p.pushed += count;
            job.updatedAt = this.o.now();
          });
        } catch (err) {
          r.error = p.error = errorText(err);
        } finally {
          convoy.leave(m.url);
        }
        try {
          if (!r.error) await peerJson(`${m.url}${MIRROR_PREFIX}/schedules`, { method: 'PUT', token: this.o.token, body: { schedules } });
        } catch (err) {
          r.error = p.error = errorText(err);
        }
      }
      r.skipped = r.tally.count;
      const skippedWhy = r.tally.summary();
      if (skippedWhy) {
        r.skippedWhy = skippedWhy;
        this.o.log.warn({ mirror: m.url, skipped: r.skipped, why: skippedWhy }, `mirror ${m.url} sent ${r.skipped} invalid device records; they were skipped, not merged`);
      }
      const skipped = { skipped: r.skipped, skippedWhy };
      if (r.error) {
        this.o.log.warn({ mirror: m.url, error: r.error }, 'mirror sync failed; the next run retries');
        await store.updateMirror(m.url, { lastAttemptAt: startedAt, error: r.error, ...skipped });
      } else {
        await store.updateMirror(m.url, { lastAttemptAt: startedAt, lastSyncAt: startedAt, pulled: r.pulled, pushed: r.pushed, error: null, ...skipped });
      }
      p.phase = r.error ? 'failed' : 'done';
      job.updatedAt = this.o.now();
    }));
    const pending = known.filter((m) => m.state === 'pending').map((m) => m.url);
    return { mirrors: [...results.values()].map(({ tally: _, ...r }) => r), pending };
  }

  /**
   * Pushes every record the primary changed after the mirror's push cursor, a page at a time (one
   * read of the whole feed would hold the event loop: 100,000 rows take about a second), moving
   * the cursor past each page once the mirror has it. Records the mirror holds already (merged
   * here exactly as it sent them, unchanged since: listDeviceChanges `heldBy` is its storeId) are
   * left out; `compact`: in format 2 (the mirror answered its pull in it).
   */
  private async push(m: MirrorRecord, compact: boolean, pages: PushPages, pace: () => Promise<void>, onPage: (count: number) => void): Promise<number> {
    let after = m.pushCursor;
    let pushed = 0;
    for (;;) {
      await pace();
      const page = await pages.get(after);
      const { count, next } = page;
      // The next page is prepared while this mirror merges this one.
      if (count === PUSH_PAGE) void pages.get(next).catch(() => {});
      const { json, sent } = count > 0 ? page.body(compact, m.storeId) : { json: '', sent: 0 };
      if (sent > 0) {
        const answer = await peerJson<{ skipped?: unknown; skippedWhy?: unknown }>(`${m.url}${MIRROR_PREFIX}/devices`, { method: 'POST', token: this.o.token, json });
        if (typeof answer?.skipped === 'number' && answer.skipped > 0) {
          this.o.log.warn({ mirror: m.url, skipped: answer.skipped, why: String(answer.skippedWhy).slice(0, 500) }, `mirror ${m.url} refused ${answer.skipped} of the records pushed to it (is its clock right?)`);
        }
        pushed += sent;
        onPage(sent);
      }
      if (next !== after) await this.o.store.updateMirror(m.url, { pushCursor: next });
      after = next;
      if (count < PUSH_PAGE) return pushed;
    }
  }
}

/**
 * A page of the primary's change feed as pushed: its size, the cursor after it, and each record
 * serialised once per format a mirror needs (format 2; format 1 for mirrors from before it), so
 * a mirror's body is the records it lacks joined, not a serialisation of its own.
 */
class PushPage {
  #v1: string[] | undefined;
  #v2: string[] | undefined;

  constructor(private readonly devices: DeviceRecord[], private readonly ids: Array<DeviceBinding | null>,
    private readonly heldBy: Array<string | null>, readonly next: string | null) {}

  get count(): number {
    return this.devices.length;
  }

  /** The POST body for a mirror: every record but those its store holds already (`storeId`); `sent`: how many. */
  body(compact: boolean, storeId: string | null): { json: string; sent: number } {
    const parts = compact
      ? (this.#v2 ??= this.devices.map((d, i) => JSON.stringify(toCompactSync(d, this.ids[i]))))
      : (this.#v1 ??= this.devices.map((d, i) => JSON.stringify(toDeviceSync(d, this.ids[i]))));
    const held = this.heldBy;
    const mine = storeId === null ? parts : parts.filter((_, i) => held[i] !== storeId);
    if (mine.length === 0) return { json: '', sent: 0 };
    const head = compact ? `{"format":${COMPACT_FORMAT},"records":[` : '{"records":[';
    return { json: `${head}${mine.join(',')}]}`, sent: mine.length };
  }
}

/**
 * The pages of one run's push, read and serialised once for every mirror that starts from the
 * same cursor (on a first sync, all of them). Bounded: the last PUSH_PAGES_KEPT pages are kept
 * (mirrors that merge at different speeds drift apart; one that falls behind reads its pages
 * again), so a run holds a few pages in memory, not the feed.
 */
class PushPages {
  private readonly kept = new Map<string, Promise<PushPage>>();

  constructor(private readonly store: Store) {}

  get(after: string | null): Promise<PushPage> {
    const k = after ?? '';
    let p = this.kept.get(k);
    if (!p) {
      p = this.read(after);
      this.kept.set(k, p);
      p.catch(() => this.kept.delete(k));
      while (this.kept.size > PUSH_PAGES_KEPT) this.kept.delete(this.kept.keys().next().value!);
    }
    return p;
  }

  private async read(after: string | null): Promise<PushPage> {
    const { devices, next, heldBy, bindings } = await this.store.listDeviceChanges(after, PUSH_PAGE);
    return new PushPage(devices, bindings, heldBy, next);
  }
}

