import type { Store } from '../../store/store.js';
import { isRefusal, syncedFromCompact, syncedFromSync, type Refusal, type SyncedDevice } from './device-sync.js';
import { DEFAULT_CHANNEL } from '../../protocol/names.js';

/**
 * What a received device record must match besides its form (device-sync.ts): on the primary, a
 * product it holds, a channel of that product the check path accepts (one with a release or a
 * schedule, or `stable`, where devices enrol before the first release), and a version released on
 * that channel (yanked ones count: devices keep running them) or null. Loaded once per sync run.
 * `releases: false` (a mirror taking its primary's push): only the form is judged, since a mirror
 * may not have replicated the release or product a record names yet, and the primary is the one
 * that validated it.
 */
export class RecordRules {
  private constructor(private readonly released: Map<string, Set<string>> | null, private readonly products: Set<string>) {}

  static async load(store: Store, opts: { releases: boolean }): Promise<RecordRules> {
    if (!opts.releases) return new RecordRules(null, new Set());
    const released = new Map<string, Set<string>>();
    const products = new Set<string>();
    const channel = (product: string, name: string) => {
      const key = `${product}\u0000${name}`;
      let set = released.get(key);
      if (!set) released.set(key, (set = new Set()));
      return set;
    };
    for (const s of await store.listSchedules()) channel(s.product, s.channel);
    for (const p of await store.listProducts()) {
      products.add(p.name);
      channel(p.name, DEFAULT_CHANNEL);
      for (const r of await store.listReleases(p.name)) channel(r.product, r.channel).add(r.version);
    }
    return new RecordRules(released, products);
  }

  /** One record; `compact`: of format 2 (an array, wire.ts CompactDeviceSync), else an object of format 1. */
  check(raw: unknown, now: Date, compact = false): SyncedDevice | Refusal {
    const s = compact ? syncedFromCompact(raw, now) : syncedFromSync(raw, now);
    if (isRefusal(s) || !this.released) return s;
    const d = s.record;
    if (!this.products.has(d.product)) return { kind: 'unknown product', text: `product '${d.product}' does not exist here` };
    const versions = this.released.get(`${d.product}\u0000${d.channel}`);
    if (!versions) return { kind: 'unknown channel', text: `channel '${d.channel}' of ${d.product} has no release or schedule here` };
    if (d.version !== null && !versions.has(d.version)) return { kind: 'version not released', text: `version ${d.version} was never released on ${d.product}/${d.channel}` };
    return s;
  }

  /** The valid records of `raw` (`compact`: of format 2); the others are counted in `tally`, never merged. */
  sort(raw: unknown[], now: Date, tally: SkipTally, compact = false): SyncedDevice[] {
    const out: SyncedDevice[] = [];
    for (const r of raw) {
      const d = this.check(r, now, compact);
      if (isRefusal(d)) tally.add(d);
      else out.push(d);
    }
    return out;
  }
}

/** Counts refused records by kind, keeping the first example of each (bounded: at most 20 kinds). */
export class SkipTally {
  count = 0;
  private readonly kinds = new Map<string, { n: number; text: string }>();

  add(r: Refusal): void {
    this.count++;
    const k = this.kinds.get(r.kind);
    if (k) k.n++;
    else if (this.kinds.size < 20) this.kinds.set(r.kind, { n: 1, text: r.text });
  }

  /** `2 version not released (e.g. version 99.0.0 was never released on acme/stable); 1 bad MAC (...)`, or null. */
  summary(): string | null {
    if (this.count === 0) return null;
    return [...this.kinds].map(([kind, { n, text }]) => `${n} ${kind} (e.g. ${text})`).join('; ').slice(0, 2000);
  }
}
