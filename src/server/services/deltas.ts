import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DeltaRecord, ReleaseRecord, Store } from '../../store/store.js';
import type { ArtifactStore } from '../../artifacts/artifact-store.js';
import { compareVersions } from '../../protocol/version.js';
import { deltaTargetPath, type DeltaCustom } from '../../protocol/targets.js';
import { delegatesDeltasTo } from '../../tuf/repository.js';
import type { Clock } from '../clock.js';
import type { OnlineKeyPairs, TufMetadataService } from './tuf-metadata.js';
import type { ReleaseService } from './releases.js';
import { commitWithArtifact } from './target-update.js';
import { JobQueue } from './job-queue.js';
import type { CatalogChanges } from './catalog-sync.js';

/** Computes a delta; `signal` stops it at once (shutdown, time bound); `lowCost` picks the cheaper mode; it may move (detach) the two buffers. */
export type ComputeDelta = (oldStream: Buffer, newStream: Buffer, o: { signal: AbortSignal; lowCost: boolean }) => Promise<{ delta: Buffer; engine: string }>;

/** The bounds of delta computation (`serve --delta-*`); see docs/architecture.md "Deltas". */
export const DELTA_DEFAULTS = {
  /** No delta from or to a tree stream larger than this (bytes): computing takes about 28x it in memory (bench/README.md). */
  maxBytes: 64 * 1024 ** 2,
  /** Above this tree stream size (bytes), the lower-cost mode (one engine, Brotli q9). */
  lowCostAbove: 16 * 1024 ** 2,
  /** One computation is stopped (its worker terminated) past this. */
  timeoutMs: 10 * 60_000,
  /** Releases waiting for their deltas; beyond, the oldest waiting is dropped. */
  queueLength: 8,
};

export interface DeltaOptions {
  /** Deltas from this many of the most common applied versions (plus the previous release). */
  fromMostCommon: number;
  /** Offer a delta only when it is at most (1 - margin) of the full archive. */
  margin: number;
  maxBytes: number;
  lowCostAbove: number;
  timeoutMs: number;
  queueLength: number;
}

/**
 * Deltas: computed in the background after a publish (never delaying it or any check), from the
 * releases devices actually run: the registry's most common applied versions first, plus the
 * previous release. A delta is a target of the delegated `deltas` role, which the server signs
 * with its deltas key; it is offered when it beats the full archive by the margin and until a
 * device reports that applying it failed.
 */
export class DeltaService {
  private offers = new Map<string, DeltaRecord>();
  private readonly queue: JobQueue<ReleaseRecord>;

  constructor(
    private readonly store: Store,
    private readonly artifacts: ArtifactStore,
    private readonly tuf: TufMetadataService,
    private readonly keys: OnlineKeyPairs | null,
    private readonly releases: ReleaseService,
    private readonly compute: ComputeDelta,
    private readonly opts: DeltaOptions,
    private readonly now: Clock,
    private readonly log: { info(o: object, m: string): void; warn(o: object, m: string): void },
    private readonly changes: CatalogChanges,
  ) {
    this.queue = new JobQueue(opts.queueLength, (r, signal) => this.job(r, signal), (r) => {
      this.log.warn({ release: `${r.product} ${r.version}`, queueLength: opts.queueLength }, 'too many releases wait for deltas; the oldest waiting gets none (devices get the full archive)');
    });
  }

  private key(product: string, from: string, to: string): string {
    return `${product}\u0000${from}\u0000${to}`;
  }

  async load(products: string[]): Promise<void> {
    for (const p of products) await this.loadProduct(p);
  }

  /** Reads one product's deltas again (another process computed one, or withdrew one). */
  async loadProduct(product: string): Promise<void> {
    for (const d of await this.store.listDeltas(product)) {
      // The signed deltas role lists it, so its bytes are served (a restart must not 404 them).
      this.releases.addHash(d.product, d.sha256, 'delta', d.length);
      this.remember(d);
    }
  }

  private remember(d: DeltaRecord): void {
    if (d.failed) this.offers.delete(this.key(d.product, d.fromVersion, d.toVersion));
    else this.offers.set(this.key(d.product, d.fromVersion, d.toVersion), d);
  }

  /** The delta to offer a device at `from` for `release`, if one is worth it. */
  offer(release: ReleaseRecord, from: string | null): DeltaRecord | undefined {
    if (from === null) return undefined;
    const d = this.offers.get(this.key(release.product, from, release.version));
    return d && d.length <= (1 - this.opts.margin) * release.length ? d : undefined;
  }

  /** `devices` distinct devices could not apply `target`: stop offering it (they fell back to the full archive). */
  async markFailed(product: string, target: string, devices = 1): Promise<void> {
    if (!(await this.store.markDeltaFailed(product, target))) return;
    for (const [k, d] of this.offers) if (d.product === product && d.target === target) this.offers.delete(k);
    this.changes.changed(product, 'deltas');
    this.log.warn({ product, target, devices }, `${devices} devices could not apply a delta; it is no longer offered`);
  }

  /** Queues delta computation for a new release (one computation at a time, in order, in the background). */
  schedule(release: ReleaseRecord): void {
    this.queue.push(release);
  }

  /** Waits for queued work (tests). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /**
   * Shutdown: drops waiting releases and terminates a computation in progress, so the server stops
   * at once. An abandoned delta is simply not offered (the next publish computes from the versions
   * devices then run).
   */
  close(): Promise<void> {
    return this.queue.close('the server is shutting down');
  }

  private async job(release: ReleaseRecord, signal: AbortSignal): Promise<void> {
    const name = `${release.product} ${release.version}`;
    try {
      await this.computeFor(release, signal);
    } catch (err) {
      if (signal.aborted) this.log.warn({ release: name }, 'shutting down: the delta computation in progress was abandoned');
      else this.log.warn({ err: (err as Error).message, release: name }, 'computing deltas failed; devices get the full archive');
    }
  }

  async computeFor(release: ReleaseRecord, signal: AbortSignal = new AbortController().signal): Promise<DeltaRecord[]> {
    if (!this.keys) return [];
    const targets = await this.store.getMetadata(release.product, 'targets');
    if (!targets || !delegatesDeltasTo(targets.json, this.keys.deltas.publicHex)) return [];
    const made: DeltaRecord[] = [];
    for (const from of await this.sources(release)) {
      signal.throwIfAborted();
      const d = await this.one(from, release, signal);
      if (d) made.push(d);
    }
    return made;
  }

  /** The most common applied versions of the channel, then the previous release; lower than `release`, not done yet. */
  private async sources(release: ReleaseRecord): Promise<ReleaseRecord[]> {
    const channel = (await this.store.listReleases(release.product, release.channel)).filter((r) => compareVersions(r.version, release.version) < 0);
    const byVersion = new Map(channel.map((r) => [r.version, r]));
    const counts = Object.entries(await this.store.countVersions({ product: release.product }))
      .filter(([v]) => byVersion.has(v)).sort((a, b) => b[1] - a[1]).slice(0, this.opts.fromMostCommon).map(([v]) => byVersion.get(v)!);
    const previous = channel.sort((a, b) => compareVersions(a.version, b.version)).pop();
    const out = [...counts];
    if (previous && !out.includes(previous)) out.push(previous);
    const done = new Set((await this.store.listDeltas(release.product, release.version)).map((d) => d.fromVersion));
    return out.filter((r) => !done.has(r.version));
  }

  /** The release's tree stream, or null when it is larger than `maxBytes` (never held whole then). */
  private async stream(sha256: string): Promise<Buffer | null> {
    const chunks: Buffer[] = [];
    let total = 0;
    const gunzip = createGunzip();
    // pipeline: a read error of the artifact ends the loop below with that error.
    pipeline(await this.artifacts.read(sha256), gunzip).catch(() => {});
    for await (const c of gunzip) {
      total += (c as Buffer).length;
      if (total > this.opts.maxBytes) {
        gunzip.destroy();
        return null;
      }
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks);
  }

  private async one(from: ReleaseRecord, to: ReleaseRecord, signal: AbortSignal): Promise<DeltaRecord | undefined> {
    const [oldStream, newStream] = await Promise.all([this.stream(from.sha256), this.stream(to.sha256)]);
    if (!oldStream || !newStream) {
      this.log.info({ from: from.version, to: to.version, maxBytes: this.opts.maxBytes }, 'a tree stream is larger than --delta-max-bytes; no delta (devices get the full archive)');
      return undefined;
    }
    // Read before the computation: it may move the buffers into its worker.
    const newStreamLength = newStream.length;
    const lowCost = Math.max(oldStream.length, newStreamLength) > this.opts.lowCostAbove;
    this.log.info({ from: from.version, to: to.version, oldBytes: oldStream.length, newBytes: newStream.length, lowCost }, 'computing a delta');
    const started = performance.now(); // a stopwatch for the log, not the clock
    const bound = AbortSignal.timeout(this.opts.timeoutMs);
    let computed;
    try {
      computed = await this.compute(oldStream, newStream, { signal: AbortSignal.any([signal, bound]), lowCost });
    } catch (err) {
      if (!bound.aborted || signal.aborted) throw err;
      this.log.warn({ from: from.version, to: to.version, timeoutMs: this.opts.timeoutMs }, 'the delta computation took longer than --delta-timeout and was stopped; devices get the full archive');
      return undefined;
    }
    const { delta, engine } = computed;
    signal.throwIfAborted();
    if (delta.length > (1 - this.opts.margin) * to.length) {
      this.log.info({ from: from.version, to: to.version, delta: delta.length, full: to.length }, 'delta not smaller than the full archive by the margin; not offered');
      return undefined;
    }
    const target = deltaTargetPath(to.channel, from.version, to.version);
    const custom: DeltaCustom = {
      patchwire: { kind: 'delta', product: to.product, channel: to.channel, from: from.version, to: to.version, engine, newStreamLength },
    };
    const staged = await this.artifacts.stage(Readable.from([delta]), { maxLength: delta.length });
    try {
      const record: DeltaRecord = {
        product: to.product, channel: to.channel, fromVersion: from.version, toVersion: to.version, target,
        sha256: staged.sha256, length: staged.length, engine, createdAt: this.now(), failed: false,
      };
      await this.tuf.exclusive(to.product, async () => {
        const all: Record<string, { length: number; sha256: string; custom: Record<string, unknown> }> = {};
        const current = await this.store.getMetadata(to.product, 'deltas');
        if (current) {
          const signed = (JSON.parse(current.json) as { signed: { targets: Record<string, { length: number; hashes: { sha256: string }; custom: Record<string, unknown> }> } }).signed;
          for (const [p, t] of Object.entries(signed.targets)) all[p] = { length: t.length, sha256: t.hashes.sha256, custom: t.custom };
        }
        all[target] = { length: record.length, sha256: record.sha256, custom };
        const metadata = await this.tuf.signDeltasFor(to.product, all);
        await commitWithArtifact(this.artifacts, staged, () => this.store.addDelta(record, metadata));
      });
      this.releases.addHash(to.product, record.sha256, 'delta', record.length);
      this.remember(record);
      this.changes.changed(to.product, 'deltas');
      this.log.info({ from: from.version, to: to.version, engine, bytes: delta.length, full: to.length, ms: Math.round(performance.now() - started), lowCost }, 'delta ready');
      return record;
    } finally {
      await staged.discard().catch(() => {});
    }
  }
}
