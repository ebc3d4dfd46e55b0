import type { DeviceFilter, DeviceIdentityRecord, DeviceRecord, ReportRecord, Store } from '../../store/store.js';
import { isHigher } from '../../protocol/version.js';
import type { CheckRequest, CheckResponse, DeviceDetail, DeviceListPage, ReportRequest } from '../../protocol/wire.js';
import { InvalidCursorError } from '../../store/errors.js';
import { isDeltaTargetPath } from '../../protocol/targets.js';
import { ApiError } from '../api-error.js';
import type { Clock } from '../clock.js';
import type { ProductService } from './products.js';
import type { ReleaseService } from './releases.js';
import type { ScheduleService } from './schedules.js';
import type { MovedService } from './moved.js';
import type { SightingBatcher } from './sighting-batcher.js';
import type { DeltaService } from './deltas.js';
import type { InstallIdWatch } from './install-id-watch.js';
import { DEFAULT_CHANNEL } from '../../protocol/names.js';
import { withIdentities } from '../views/device-view.js';
import { toHistoryEntry, toReportView } from '../views/report-view.js';
import { toReleaseOffer } from '../views/release-view.js';
import { toScheduleInfo } from '../views/schedule-view.js';
import { toMovedInfo } from '../views/moved-view.js';
import type { CheckAnswerSigner } from './check-answer.js';
import type { RolloutService } from './rollouts.js';
import { rolloutPlacement } from '../../protocol/rollout.js';

/** `serve --delta-fail-threshold` default: distinct devices that must report a delta failed. */
export const DEFAULT_DELTA_FAIL_THRESHOLD = 3;

/**
 * The device registry and the server's half of a check (docs/design.md section 2, "Server, per check").
 * A check registers the device (batched) and compares versions; only the device's own report
 * changes its applied version.
 */
export class DeviceService {
  constructor(
    private readonly store: Store,
    private readonly products: ProductService,
    private readonly releases: ReleaseService,
    private readonly schedules: ScheduleService,
    private readonly moved: MovedService,
    private readonly sightings: SightingBatcher,
    private readonly source: () => string,
    private readonly now: Clock,
    private readonly deltas?: DeltaService,
    private readonly installs?: { watch: InstallIdWatch; warn: (obj: object, msg: string) => void },
    private readonly answers?: CheckAnswerSigner,
    /** Distinct devices whose `delta-failed` reports withdraw a delta (`serve --delta-fail-threshold`). */
    private readonly deltaFailThreshold = DEFAULT_DELTA_FAIL_THRESHOLD,
    /** Staged rollouts; `halts`: this server halts them on failure reports (a primary; a mirror copies its primary's state). */
    private readonly staged?: { rollouts: RolloutService; halts: boolean },
  ) {}

  /** The server's clock: listing filters such as `staleSeconds` count back from it. */
  time(): Date {
    return this.now();
  }

  /**
   * The channels a device may check on: every channel with at least one release or a schedule,
   * and always `stable` (the agent's default), so the devices of a product with no release yet
   * (or with releases on other channels only) can enrol before the first stable release.
   */
  channels(product: string): string[] {
    this.products.require(product);
    const set = new Set([DEFAULT_CHANNEL, ...this.releases.channelsOf(product)]);
    for (const s of this.schedules.all()) if (s.product === product) set.add(s.channel);
    return [...set].sort();
  }

  /** Throws PW_UNKNOWN_PRODUCT / PW_UNKNOWN_CHANNEL (with the list of channels) unless both exist. */
  requireChannel(product: string, channel: string): void {
    this.products.require(product);
    // A typo in the device's channel would otherwise be "up to date" forever.
    // The same rule as channels(): a channel whose releases were all yanked still exists.
    if (channel !== DEFAULT_CHANNEL && !this.releases.hasChannel(product, channel) && !this.schedules.get(product, channel)) {
      throw new ApiError(
        'PW_UNKNOWN_CHANNEL',
        `${product} has no channel '${channel}' (no release on it); its channels: ${this.channels(product).join(', ')}. Fix the device's channel: \`patchwire init --channel C\` in a fresh folder`,
      );
    }
  }

  /** The applied version the registry records for a device (null: none, or no such device). */
  async versionOf(deviceId: string, product: string): Promise<string | null> {
    return (await this.store.getDevice(deviceId, product))?.version ?? null;
  }

  async check(req: CheckRequest): Promise<CheckResponse> {
    this.requireChannel(req.product, req.channel);
    const now = this.now();
    const warnings = this.watchInstall(req, now);
    // Step 1: register the device (first seen / last seen), batched off the request path.
    this.sightings.add({ deviceId: req.deviceId, product: req.product, channel: req.channel, seenAt: now, source: this.source() });
    // Step 2: the version to compare. A device that states what it runs is believed (null: nothing
    // installed, e.g. a re-installed copy whose record still says 1.2.0); a client that does not say
    // is judged by the applied version recorded in the registry.
    const current = req.version !== undefined ? req.version : ((await this.store.getDevice(req.deviceId, req.product))?.version ?? null);
    const latest = this.releases.latestOf(req.product, req.channel);
    const schedule = this.schedules.get(req.product, req.channel);
    const moved = this.moved.get(req.product);
    // A staged rollout may offer this device a lower release than the latest, or none (rollouts.ts).
    const { offer, hint } = this.staged ? this.staged.rollouts.decide(req.deviceId, req.product, req.channel, current) : { offer: latest, hint: undefined };
    const update = offer !== undefined && isHigher(offer.version, current);
    const delta = update ? this.deltas?.offer(offer, current) : undefined;
    const answer: CheckResponse = {
      // An agent from before staged rollouts does not know `deferred`: it is told `up-to-date`.
      status: update ? 'update' : hint && req.deferred === true ? 'deferred' : 'up-to-date',
      product: req.product,
      channel: req.channel,
      latest: latest?.version ?? null,
      release: update ? toReleaseOffer(offer, delta) : null,
      ...(hint ? { rollout: hint } : {}),
      schedule: schedule ? toScheduleInfo(schedule) : null,
      moved: moved ? toMovedInfo(moved) : null,
      serverTime: now.toISOString(),
      ...(warnings ? { warnings } : {}),
    };
    const signed = await this.answers?.sign(req, answer, now);
    if (signed) answer.signed = signed;
    return answer;
  }

  /** A warning when another install folder of this product reported the same device id lately. */
  private watchInstall(req: CheckRequest, now: Date): string[] | undefined {
    if (!this.installs || req.installId === undefined) return undefined;
    const other = this.installs.watch.see(req.deviceId, req.product, req.installId, now);
    if (other === undefined) return undefined;
    const msg = `device id ${req.deviceId} of ${req.product} is used by two install folders (install ids ${other} and ${req.installId}) ` +
      'within 24 h: the server keeps one record per device id and product, so they overwrite each other; give each folder its own id with `patchwire init --device-id MAC`';
    this.installs.warn({ deviceId: req.deviceId, product: req.product, installIds: [other, req.installId] }, msg);
    return [msg];
  }

  /** Step 3: the device's own report sets its applied version (`applied`, `rolled-back`). */
  async report(req: ReportRequest): Promise<DeviceRecord> {
    // The registry holds channels devices can check on, as check does (found by an attacker:
    // reports named any channel, and any version of the product).
    this.requireChannel(req.product, req.channel);
    // The release an update concerns is one of the channel's (progress and failures are counted per release).
    // (applied and rolled-back check `version` below: no second read when toVersion is that one.)
    const checked = (req.event === 'applied' || req.event === 'rolled-back') && req.toVersion === req.version;
    if (req.toVersion !== undefined && req.toVersion !== null && !checked) await this.requireRelease(req, req.toVersion);
    if (req.event === 'delta-failed') {
      // The agent fell back to the full archive; `detail` names the delta that failed.
      // One report is not enough: only DISTINCT devices count, read from the stored reports (so a
      // restart does not reset the count and one device repeating itself never reaches it).
      if (typeof req.detail === 'string' && isDeltaTargetPath(req.detail) && this.deltas) {
        const detail = req.detail;
        const stored = await this.store.recordReport(this.reportRecord(req));
        const devices = await this.store.countDeltaFailedDevices(req.product, detail);
        if (devices >= this.deltaFailThreshold) await this.deltas.markFailed(req.product, detail, devices);
        return stored;
      }
    } else if (req.event === 'applied' || req.event === 'rolled-back') {
      if (req.version === null) throw new ApiError('PW_BAD_REQUEST', `an '${req.event}' report needs the version the device now runs`);
      await this.requireRelease(req, req.version);
    } else if ((req.event === 'downloading' || req.event === 'installing') && (req.toVersion === undefined || req.toVersion === null)) {
      throw new ApiError('PW_BAD_REQUEST', `a '${req.event}' report needs toVersion: the release the update installs`);
    }
    await this.requireOffered(req);
    const stored = await this.store.recordReport(this.reportRecord(req));
    const attempted = attemptedVersion(req);
    if (attempted && this.staged?.halts) await this.staged.rollouts.afterReport(req.product, req.channel, attempted);
    return stored;
  }

  /**
   * What report() refuses a `failed` (or progress) report for, without storing anything: the
   * channel, the release it is about, and that the device was offered it (requireOffered). The
   * Mender API records a failure only when the client's log comes (up to 30 s later), so it asks
   * here first and refuses the status at once (found by an attacker: a failure about a release
   * never offered, or none at all, was answered 204, held, and dropped with a warning later).
   */
  async checkReport(req: ReportRequest): Promise<void> {
    this.requireChannel(req.product, req.channel);
    if (req.toVersion !== undefined && req.toVersion !== null) await this.requireRelease(req, req.toVersion);
    if ((req.event === 'applied' || req.event === 'rolled-back') && req.version !== null && req.version !== req.toVersion) await this.requireRelease(req, req.version);
    await this.requireOffered(req);
  }

  /**
   * PW_NOT_OFFERED unless every staged release the report is about was offered to this device
   * (rollouts.ts neverOffered): the outcome counts that halt a rollout hold only devices it let
   * in. Before refusing, the product's rollouts are read again from the store: another process
   * of the cluster may have advanced the phase that let the device in a moment ago.
   */
  private async requireOffered(req: ReportRequest): Promise<void> {
    const rollouts = this.staged?.rollouts;
    if (!rollouts) return;
    const concerned = [...new Set(reportedVersions(req))];
    const held = () => concerned.find((v) => rollouts.neverOffered(req.deviceId, req.product, req.channel, v));
    if (held() === undefined) return;
    await rollouts.loadProduct(req.product);
    const v = held();
    if (v === undefined) return;
    const r = rollouts.neverOffered(req.deviceId, req.product, req.channel, v)!;
    throw new ApiError('PW_NOT_OFFERED', `${req.product}/${req.channel} ${v} was never offered to device ${req.deviceId}: its staged rollout is ${r.state} at ${r.phases[r.phase]}% `
      + `and this device is placed at ${rolloutPlacement(req.deviceId, req.product, v)}%; a device reports only an update its check offered (check again to see what it is offered)`);
  }

  /**
   * Why a release a device may be installing right now is withdrawn: `yanked`, `aborted` (its
   * staged rollout), or undefined when it still stands. The Mender API answers 409 to the
   * progress statuses of such a deployment, so the client stops before it installs.
   */
  async withdrawn(product: string, channel: string, version: string): Promise<'yanked' | 'aborted' | undefined> {
    const release = (await this.releases.list(product, channel)).find((r) => r.version === version);
    if (release?.yankedAt) return 'yanked';
    return this.staged?.rollouts.get(product, channel, version)?.state === 'aborted' ? 'aborted' : undefined;
  }

  /** Released on the device's channel (a yanked one too: a device may run it), else PW_UNKNOWN_RELEASE. */
  private async requireRelease(req: ReportRequest, version: string): Promise<void> {
    const known = (await this.releases.list(req.product, req.channel)).some((r) => r.version === version);
    if (!known) throw new ApiError('PW_UNKNOWN_RELEASE', `${req.product}/${req.channel} has no release ${version}; report a version the server published on the device's channel`);
  }

  private reportRecord(req: ReportRequest): ReportRecord {
    return {
      deviceId: req.deviceId, product: req.product, channel: req.channel, event: req.event,
      version: req.version, previousVersion: req.previousVersion, detail: req.detail ?? null,
      at: this.now(), source: this.source(),
      ...(req.toVersion !== undefined && req.toVersion !== null ? { toVersion: req.toVersion } : {}),
      ...(req.state !== undefined ? { state: req.state } : {}),
    };
  }

  /** One page of the registry (docs/protocol.md, GET /v1/admin/devices); `limit` is bounded by the caller. */
  async list(filter: DeviceFilter, after: string | null, limit: number): Promise<DeviceListPage> {
    await this.sightings.flush();
    let page;
    try {
      page = await this.store.listDevicePage(filter, after, limit);
    } catch (err) {
      if (err instanceof InvalidCursorError) throw new ApiError('PW_BAD_REQUEST', `${err.message}; pass the \`next\` of the previous page, or start over without \`after\``, { cause: err });
      throw err;
    }
    // Identities of this page only, read in one pass: a page costs the same in any registry.
    const ids = await this.store.getIdentities(page.devices);
    return { devices: withIdentities(page.devices, ids.filter((i): i is DeviceIdentityRecord => i !== undefined)), next: page.next };
  }

  /**
   * Removes a device from the product's registry with its report history (docs/protocol.md). Pending
   * sightings are written first, so none re-adds it afterwards; a device that checks again enrols
   * as new. A mirror's copy stays there until that mirror hears from the device again.
   */
  async remove(deviceId: string, product: string): Promise<void> {
    this.products.require(product);
    await this.sightings.flush();
    if (!(await this.store.removeDevice(deviceId, product))) {
      throw new ApiError('PW_UNKNOWN_DEVICE', `${product} has no device ${deviceId}; \`patchwire devices --product ${product}\` lists them`);
    }
  }

  /**
   * One device with its history, newest first (docs/protocol.md); PW_UNKNOWN_DEVICE when the
   * product's registry has no such device. A device that authenticated but never checked in (a
   * pending one) is shown from its identity, with no history.
   */
  async show(deviceId: string, product: string): Promise<DeviceDetail> {
    this.products.require(product);
    await this.sightings.flush();
    const [record, identity] = await Promise.all([this.store.getDevice(deviceId, product), this.store.getIdentity(deviceId, product)]);
    if (!record && !identity) {
      throw new ApiError('PW_UNKNOWN_DEVICE', `${product} has no device ${deviceId}; \`patchwire devices --product ${product}\` lists them`);
    }
    const [device] = withIdentities(record ? [record] : [], identity ? [identity] : []);
    const history = record ? (await this.store.listReports(deviceId, product)).reverse().map(toHistoryEntry) : [];
    return { device: device!, history };
  }

  /**
   * A device's outcome reports (applied, rolled-back, failed, delta-failed), oldest first: GET
   * .../reports as it was before issue 11. The progress events (downloading, installing) are in
   * the full history only (show()).
   */
  async reports(deviceId: string, product: string): Promise<ReturnType<typeof toReportView>[]> {
    return (await this.store.listReports(deviceId, product)).filter((r) => r.event !== 'downloading' && r.event !== 'installing').map(toReportView);
  }
}

/** Every release a report speaks of as installed, attempted or failed (what the rollout counts would count it under). */
function reportedVersions(req: ReportRequest): string[] {
  const out: string[] = [];
  if (req.toVersion) out.push(req.toVersion);
  if (req.event === 'applied' && req.version !== null) out.push(req.version);
  const attempted = attemptedVersion(req);
  if (attempted) out.push(attempted);
  return out;
}

/** The release a failure report is about: rolled back from it, or the agent's "update to X failed" detail. */
function attemptedVersion(req: ReportRequest): string | null {
  if (req.event === 'rolled-back') return req.previousVersion;
  if (req.event !== 'failed' || typeof req.detail !== 'string') return null;
  return /^(?:first install: )?update to (\S+) failed/.exec(req.detail)?.[1] ?? null;
}
