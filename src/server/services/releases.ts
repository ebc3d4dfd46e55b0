import type { ReleaseRecord, Store } from '../../store/store.js';
import { StoreConflictError } from '../../store/errors.js';
import type { Readable } from 'node:stream';
import type { ArtifactStore, StageOptions, StagedArtifact } from '../../artifacts/artifact-store.js';
import { ArchiveLimitError, inspectArchive, UnsafeArchiveError } from '../../util/archive-extract.js';
import { compareVersions, isHigher, isVersion } from '../../protocol/version.js';
import { isName } from '../../protocol/names.js';
import { parseReleaseCustom } from '../../protocol/release-custom.js';
import { releaseTargetPath } from '../../protocol/targets.js';
import type { ReleaseNotice } from '../../protocol/push.js';
import { ApiError } from '../api-error.js';
import type { Clock } from '../clock.js';
import type { TufMetadataService } from './tuf-metadata.js';
import type { ProductService } from './products.js';
import { checkOnlyTargetChanged, checkStagedMatches, commitWithArtifact } from './target-update.js';
import type { CatalogChanges } from './catalog-sync.js';
import type { RolloutPlan } from '../../protocol/rollout.js';

export interface PublishRequest {
  product: string;
  channel: string;
  version: string;
  /** The next targets metadata, signed by the publisher, listing this release's archive. */
  targets: unknown;
  /** Issue 11: a staged rollout (`publish --rollout`); its phases must equal the signed target's. */
  rollout?: RolloutPlan;
}

/** Stores a release's rollout before the release commits (rollouts.ts); throws ApiError on a bad plan. */
export type StageRollout = (release: ReleaseRecord, plan: RolloutPlan) => Promise<void>;

type Listener = (release: ReleaseRecord) => void;

/** What a yank did: the release as stored, and the channel's latest afterwards (undefined: none left). */
export interface YankResult {
  release: ReleaseRecord;
  latest: ReleaseRecord | undefined;
}

const channelKey = (product: string, channel: string): string => `${product}\u0000${channel}`;

/** What a served artifact is: a release's full archive, a delta between two releases, or a moved notice. */
export type ServedKind = 'full' | 'delta' | 'notice';

/**
 * Releases per product and channel. Keeps the latest release of every channel in memory (the
 * check path reads it thousands of times a second) and the set of artifact hashes each product serves.
 * The latest is the highest release not yanked; a new version must be higher than every release
 * of the channel, yanked ones included (a version is never published twice).
 */
export class ReleaseService {
  private latest = new Map<string, ReleaseRecord>();
  private highest = new Map<string, ReleaseRecord>();
  /**
   * Per product: the hash of every artifact it serves, what it is (GET /metrics counts bytes served
   * by kind) and its signed length when known (checked at every download).
   */
  private hashes = new Map<string, Map<string, { kind: ServedKind; length: number | undefined }>>();
  /** Every release not yanked per channel, highest first (a staged rollout offers a lower one). */
  private open = new Map<string, ReleaseRecord[]>();
  private listeners: Listener[] = [];
  /** Set by the rollout service (rollouts.ts) once wired. */
  stageRollout: StageRollout | undefined;

  constructor(
    private readonly store: Store,
    private readonly artifacts: ArtifactStore,
    private readonly tuf: TufMetadataService,
    private readonly products: ProductService,
    private readonly now: Clock,
    private readonly changes: CatalogChanges,
    private readonly warn: (obj: object, msg: string) => void = () => {},
  ) {}

  /** (Re)reads every release; the maps are swapped in whole, so a check never sees a half-loaded view. */
  async load(): Promise<void> {
    const latest = new Map<string, ReleaseRecord>();
    const highest = new Map<string, ReleaseRecord>();
    const all: ReleaseRecord[] = [];
    for (const product of this.products.list()) {
      const releases = await this.store.listReleases(product);
      for (const r of releases) remember(latest, highest, r);
      all.push(...releases);
      const moved = await this.store.getMoved(product);
      if (moved) this.addHash(product, moved.sha256, 'notice');
    }
    this.latest = latest;
    this.highest = highest;
    this.open = openLists(all);
    for (const r of all) this.addHash(r.product, r.sha256, 'full', r.length);
  }

  /**
   * Reads one product's releases again (another process published or yanked): its channels'
   * entries are replaced in one synchronous step, so a check sees the old view or the new one.
   */
  async loadProduct(product: string): Promise<void> {
    const latest = new Map<string, ReleaseRecord>();
    const highest = new Map<string, ReleaseRecord>();
    const releases = await this.store.listReleases(product);
    for (const r of releases) remember(latest, highest, r);
    const moved = await this.store.getMoved(product);
    const prefix = channelKey(product, '');
    for (const map of [this.latest, this.highest, this.open]) for (const k of map.keys()) if (k.startsWith(prefix)) map.delete(k);
    for (const [k, r] of latest) this.latest.set(k, r);
    for (const [k, r] of highest) this.highest.set(k, r);
    for (const [k, list] of openLists(releases)) this.open.set(k, list);
    for (const r of releases) this.addHash(product, r.sha256, 'full', r.length);
    if (moved) this.addHash(product, moved.sha256, 'notice');
  }

  /**
   * Tells every server process (this one too) that the release exists, after its commit, so each
   * announces it on its event streams (push). Best effort: the release is published either way,
   * and devices not told find it at their next scheduled check.
   */
  private async announce(r: ReleaseRecord): Promise<void> {
    const notice: ReleaseNotice = { product: r.product, channel: r.channel, version: r.version };
    try {
      await this.store.coordination.notify('release', JSON.stringify(notice));
    } catch (err) {
      this.warn({ err, ...notice }, 'announcing the release to the event streams failed: devices find it at their next scheduled check');
    }
  }

  onPublish(listener: Listener): void {
    this.listeners.push(listener);
  }

  /** True when the channel has a release (yanked ones included): the check path's test, no allocation. */
  hasChannel(product: string, channel: string): boolean {
    return this.highest.has(channelKey(product, channel));
  }

  /** The channels of a product that have a release (yanked ones included), by name. */
  channelsOf(product: string): string[] {
    const prefix = channelKey(product, '');
    return [...this.highest.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)).sort();
  }

  /** The channel's releases not yanked, highest first (do not change the array). */
  openOf(product: string, channel: string): readonly ReleaseRecord[] {
    return this.open.get(channelKey(product, channel)) ?? [];
  }

  /** The release the channel offers: its highest one not yanked. */
  latestOf(product: string, channel: string): ReleaseRecord | undefined {
    return this.latest.get(channelKey(product, channel));
  }

  /**
   * Yanks (withdraws) a release: it is no longer offered and the channel's latest becomes its
   * highest release not yanked. Devices that applied it keep it (nothing is sent to them); its
   * signed target stays listed and its bytes stay served, so a download under way completes. A
   * yank is final: publish a higher version to replace it. Yanking it again changes nothing.
   */
  async yank(product: string, channel: string, version: string): Promise<YankResult> {
    this.products.require(product);
    // Serialised with publishes of the product, so the in-memory latest follows the store's order.
    return this.tuf.exclusive(product, async () => {
      const release = await this.store.yankRelease(product, channel, version, this.now());
      if (!release) throw new ApiError('PW_UNKNOWN_RELEASE', `${product}/${channel} has no release ${version}; \`patchwire releases --product ${product}\` lists them`);
      const key = channelKey(product, channel);
      const latest = new Map<string, ReleaseRecord>();
      const highest = new Map<string, ReleaseRecord>();
      const list = await this.store.listReleases(product, channel);
      for (const r of list) remember(latest, highest, r);
      const next = latest.get(key);
      if (next) this.latest.set(key, next);
      else this.latest.delete(key);
      this.highest.set(key, highest.get(key)!);
      this.open.set(key, openLists(list).get(key) ?? []);
      this.changes.changed(product, 'releases');
      return { release, latest: next };
    });
  }

  /**
   * Re-reads one channel from the store (another server process published to it: the push
   * stream announces a release only once this process offers it). Returns the channel's latest.
   */
  refreshChannel(product: string, channel: string): Promise<ReleaseRecord | undefined> {
    return this.tuf.exclusive(product, () => this.reloadChannel(product, channel));
  }

  /** The channel's latest and highest from the store (call inside `tuf.exclusive`). */
  private async reloadChannel(product: string, channel: string): Promise<ReleaseRecord | undefined> {
    const key = channelKey(product, channel);
    const latest = new Map<string, ReleaseRecord>();
    const highest = new Map<string, ReleaseRecord>();
    const list = await this.store.listReleases(product, channel);
    for (const r of list) {
      remember(latest, highest, r);
      this.addHash(product, r.sha256, 'full', r.length);
    }
    this.open.set(key, openLists(list).get(key) ?? []);
    const next = latest.get(key);
    if (next) this.latest.set(key, next);
    else this.latest.delete(key);
    const top = highest.get(key);
    if (top) this.highest.set(key, top);
    return next;
  }

  /** True when the product's signed targets list an artifact with this hash. */
  serves(product: string, sha256: string): boolean {
    return this.hashes.get(product)?.has(sha256) ?? false;
  }

  /**
   * A target's bytes as served, by content hash: null when the product's signed metadata lists
   * no such hash. Throws PW_NOT_FOUND when it does but the bytes are missing on this server.
   */
  async servedTarget(product: string, sha256: string): Promise<{ length: number; kind: ServedKind; read: (range?: { start: number; end: number }) => Promise<Readable> } | null> {
    const served = this.hashes.get(product)?.get(sha256);
    if (!served) return null;
    const info = await this.artifacts.stat(sha256);
    if (!info) throw new ApiError('PW_NOT_FOUND', `the bytes of target ${sha256} are missing on this server`);
    // The signed length, not the stored object's: a file truncated on disk (or an object a broken
    // bucket reports short) must not go out as a whole 200 that a CDN caches as immutable (found
    // by an attacker). Refused as the missing bytes are; the operator restores the artifact.
    if (served.length !== undefined && served.length !== info.length) {
      throw new ApiError('PW_NOT_FOUND', `the bytes of target ${sha256} on this server are ${info.length} bytes, not the ${served.length} its signature names: the stored artifact is damaged`);
    }
    return { length: info.length, kind: served.kind, read: (range) => this.artifacts.read(sha256, range) };
  }

  /** Serves `sha256` for the product as `kind`; `length` (its signed length, when known) is checked at every download. */
  addHash(product: string, sha256: string, kind: ServedKind = 'full', length?: number): void {
    let map = this.hashes.get(product);
    if (!map) this.hashes.set(product, (map = new Map()));
    map.set(sha256, { kind, length: length ?? map.get(sha256)?.length });
  }

  list(product: string, channel?: string): Promise<ReleaseRecord[]> {
    return this.store.listReleases(product, channel);
  }

  /** Receives an upload's archive into staging, hashed while it streams; publish() consumes it. */
  stage(source: Readable | AsyncIterable<Uint8Array>, opts: StageOptions): Promise<StagedArtifact> {
    return this.artifacts.stage(source, opts);
  }

  /**
   * Publishes a release: every check happens before anything is written (version order, signed
   * targets, uploaded bytes against the signature, archive safety); then the artifact and one
   * database transaction. The staged upload is always consumed (committed or discarded).
   */
  async publish(req: PublishRequest, staged: StagedArtifact): Promise<ReleaseRecord> {
    try {
      return await this.tuf.exclusive(req.product, () => this.publishLocked(req, staged));
    } finally {
      await staged.discard().catch(() => {});
    }
  }

  private async publishLocked(req: PublishRequest, staged: StagedArtifact): Promise<ReleaseRecord> {
    const { product, channel, version } = req;
    this.products.require(product);
    if (!isName(channel)) throw new ApiError('PW_BAD_REQUEST', `invalid channel '${channel}': use 1-64 of a-z 0-9 . _ -`);
    if (!isVersion(version)) throw new ApiError('PW_BAD_REQUEST', `invalid version '${version}': use a semver version such as 1.2.3`);
    const latest = this.highest.get(channelKey(product, channel));
    if (latest && !isHigher(version, latest.version)) {
      const what = latest.yankedAt ? `the highest (yanked) release of ${product}/${channel}` : `the latest of ${product}/${channel}`;
      throw new ApiError('PW_VERSION_NOT_HIGHER', `version ${version} is not higher than ${latest.version}, ${what}; publish a higher version`);
    }
    const path = releaseTargetPath(channel, version);
    const targets = await this.tuf.verifyNextTargets(product, req.targets);
    await checkOnlyTargetChanged(this.store, product, targets, path);
    const entry = targets.targets[path]!;
    const parsed = parseReleaseCustom(entry.custom, { product, channel, version });
    if (!parsed.ok) {
      throw new ApiError('PW_BAD_METADATA', `the signed target's custom.patchwire must be {kind:'full', product:'${product}', channel:'${channel}', version:'${version}', treeHash, treeBytes, treeFiles}; sign it with \`patchwire publish\``);
    }
    const custom = parsed.patchwire;
    checkStagedMatches(staged, entry, path);
    try {
      const inspected = await inspectArchive(await staged.read(), { maxBytes: custom.treeBytes });
      if (inspected.bytes !== custom.treeBytes || inspected.files !== custom.treeFiles) {
        throw new ApiError('PW_BAD_METADATA', `the archive holds ${inspected.files} files of ${inspected.bytes} bytes but the signed tree says ${custom.treeFiles} files of ${custom.treeBytes} bytes; publish again from the same folder`);
      }
    } catch (err) {
      if (err instanceof ArchiveLimitError) throw new ApiError('PW_ARCHIVE_LIMIT', `${err.message}; split the release or shorten its paths (limits: docs/security.md)`, { cause: err });
      if (err instanceof UnsafeArchiveError) throw new ApiError('PW_UNSAFE_ARCHIVE', `${err.message}; rebuild the archive from a plain folder`, { cause: err });
      if (err instanceof ApiError) throw err;
      throw new ApiError('PW_BAD_METADATA', `the uploaded archive cannot be read or is larger than the signed tree of ${custom.treeBytes} bytes (${(err as Error).message}); upload the .tar.gz that \`patchwire publish\` made and signed`, { cause: err });
    }
    const release: ReleaseRecord = {
      product, channel, version, target: path, sha256: entry.sha256, length: entry.length,
      treeHash: custom.treeHash, createdAt: this.now(),
    };
    const signedPhases = custom.rollout?.phases;
    if (req.rollout || signedPhases !== undefined) {
      if (!req.rollout || JSON.stringify(signedPhases) !== JSON.stringify(req.rollout.phases)) {
        throw new ApiError('PW_BAD_METADATA', `the upload's rollout phases (${req.rollout ? req.rollout.phases.join(',') : 'none'}) differ from the phases the publisher signed in the target (${signedPhases ? signedPhases.join(',') : 'none'}); publish again with \`patchwire publish --rollout\``);
      }
      if (!this.stageRollout) throw new ApiError('PW_BAD_REQUEST', 'this server does not stage rollouts');
    }
    const records = [
      { product, role: 'targets' as const, version: targets.version, json: targets.json, expiresAt: targets.expires },
      ...(await this.tuf.signFor(product, targets)),
    ];
    // The rollout is stored first: a rollout whose release never committed is never used (and the
    // next publish of that version replaces it), while a release without its rollout would go to everyone.
    if (req.rollout) await this.stageRollout!(release, req.rollout);
    try {
      await commitWithArtifact(this.artifacts, staged, () => this.store.commitRelease(release, records));
    } catch (err) {
      if (err instanceof StoreConflictError) throw new ApiError('PW_METADATA_VERSION', `another publish to ${product} won the race (${err.message}); fetch the current targets and sign again`, { cause: err });
      throw err;
    }
    remember(this.latest, this.highest, release);
    const key = channelKey(product, channel);
    this.open.set(key, [release, ...(this.open.get(key) ?? [])]);
    this.addHash(release.product, release.sha256, 'full', release.length);
    this.changes.changed(product, 'releases');
    for (const l of this.listeners) l(release);
    await this.announce(release);
    return release;
  }
}

/** Keeps `r` in `highest` when it is the channel's highest so far, and in `latest` when also not yanked. */
function remember(latest: Map<string, ReleaseRecord>, highest: Map<string, ReleaseRecord>, r: ReleaseRecord): void {
  const key = channelKey(r.product, r.channel);
  const top = highest.get(key);
  if (!top || compareVersions(r.version, top.version) > 0) highest.set(key, r);
  if (r.yankedAt) return;
  const cur = latest.get(key);
  if (!cur || compareVersions(r.version, cur.version) > 0) latest.set(key, r);
}

/** The releases not yanked per channel, highest first. */
function openLists(releases: ReleaseRecord[]): Map<string, ReleaseRecord[]> {
  const out = new Map<string, ReleaseRecord[]>();
  for (const r of releases) {
    if (r.yankedAt) continue;
    const key = channelKey(r.product, r.channel);
    let list = out.get(key);
    if (!list) out.set(key, (list = []));
    list.push(r);
  }
  for (const list of out.values()) list.sort((a, b) => compareVersions(b.version, a.version));
  return out;
}
