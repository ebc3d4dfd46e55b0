import type { ReleaseRecord, RolloutRecord, Store } from '../../store/store.js';
import type { AlarmView, RolloutHaltedAlarm, RolloutHint, RolloutSync, RolloutView } from '../../protocol/wire.js';
import {
  checkPhases, insidePercent, nextPhaseAt, phaseOpensAt, rolloutAt, rolloutPlacement, rolloutSpreadSeconds, ROLLOUT_LIMITS,
  type RolloutAction, type RolloutPlan,
} from '../../protocol/rollout.js';
import { isHigher } from '../../protocol/version.js';
import { ApiError } from '../api-error.js';
import type { Clock } from '../clock.js';
import type { ProductService } from './products.js';
import type { ReleaseService } from './releases.js';
import type { CatalogChanges } from './catalog-sync.js';

const key = (product: string, channel: string, version: string): string => `${product}\u0000${channel}\u0000${version}`;
/** Devices read per page when counting who is offered (bounded: at most OFFERED_MAX_DEVICES looked at). */
const OFFERED_PAGE = 1000;
const OFFERED_MAX_DEVICES = 2_000_000;

/** What a check offers one device of a channel with staged releases. */
export interface RolloutDecision {
  /** The highest release offered to this device (undefined: none). */
  offer: ReleaseRecord | undefined;
  /** A higher release held back from it, and when its phase opens. */
  hint: RolloutHint | undefined;
}

export interface RolloutServiceOptions {
  /** Raises an alarm (log at warn, webhook). */
  alarm: (message: string, alarm: AlarmView) => void;
  /** The channel's schedule spread, or null (the wave's spread when it has one). */
  scheduleSpread: (product: string, channel: string) => number | null;
}

/**
 * Staged rollouts (docs/design.md "Staged rollouts"): one record per staged release, kept in
 * memory for the check path. The phase of an active rollout with `every` is computed from its
 * record at the time asked (rolloutAt), so every process and mirror give the same answer; the
 * background job (tick) only writes it down. Changes are made under the product's lock in every
 * process (ProductService.exclusive), read fresh from the store, and fanned out (catalog-sync.ts).
 */
export class RolloutService {
  private byKey = new Map<string, RolloutRecord>();
  /** Channels (product\0channel) that have at least one rollout not complete: the check's fast path. */
  private staged = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly products: ProductService,
    private readonly releases: ReleaseService,
    private readonly now: Clock,
    private readonly changes: CatalogChanges,
    private readonly o: RolloutServiceOptions,
  ) {
    releases.stageRollout = (r, plan) => this.create(r, plan);
  }

  async load(): Promise<void> {
    const map = new Map<string, RolloutRecord>();
    for (const r of await this.store.listRollouts()) map.set(key(r.product, r.channel, r.version), r);
    this.byKey = map;
    this.reindex();
  }

  /** Reads one product's rollouts again (another process changed one). */
  async loadProduct(product: string): Promise<void> {
    const fresh = await this.store.listRollouts(product);
    for (const k of [...this.byKey.keys()]) if (k.startsWith(`${product}\u0000`)) this.byKey.delete(k);
    for (const r of fresh) this.byKey.set(key(r.product, r.channel, r.version), r);
    this.reindex();
  }

  private reindex(): void {
    const staged = new Set<string>();
    for (const r of this.byKey.values()) if (r.state !== 'complete') staged.add(`${r.product}\u0000${r.channel}`);
    this.staged = staged;
  }

  private remember(r: RolloutRecord): void {
    this.byKey.set(key(r.product, r.channel, r.version), r);
    this.reindex();
  }

  /** Checks a plan from the upload; throws PW_BAD_REQUEST naming the problem. */
  static checkPlan(plan: unknown): RolloutPlan {
    const bad = (what: string): never => {
      throw new ApiError('PW_BAD_REQUEST', `the upload's rollout plan is invalid: ${what}; send {phases: [5, 25, 100], every: seconds|null, haltAt: percent|null, minDevices} (\`patchwire publish --rollout\`)`);
    };
    if (typeof plan !== 'object' || plan === null || Array.isArray(plan)) return bad('not an object');
    const p = plan as Record<string, unknown>;
    const problem = checkPhases(p.phases);
    if (problem) bad(problem);
    const every = p.every ?? null;
    if (every !== null && (!Number.isSafeInteger(every) || (every as number) < ROLLOUT_LIMITS.minEverySeconds || (every as number) > ROLLOUT_LIMITS.maxEverySeconds)) {
      bad(`every must be whole seconds from ${ROLLOUT_LIMITS.minEverySeconds} to ${ROLLOUT_LIMITS.maxEverySeconds}, or null`);
    }
    const haltAt = p.haltAt ?? null;
    if (haltAt !== null && (typeof haltAt !== 'number' || !(haltAt > 0 && haltAt <= 100))) bad('haltAt must be a percent in (0, 100], or null');
    const minDevices = p.minDevices ?? 20;
    if (!Number.isSafeInteger(minDevices) || (minDevices as number) < 1 || (minDevices as number) > ROLLOUT_LIMITS.maxMinDevices) {
      bad(`minDevices must be a whole number from 1 to ${ROLLOUT_LIMITS.maxMinDevices}`);
    }
    return { phases: p.phases as number[], every: every as number | null, haltAt: haltAt as number | null, minDevices: minDevices as number };
  }

  /** Stores the rollout of a release being published (called inside the product's lock, before the release commits). */
  private async create(release: ReleaseRecord, plan: RolloutPlan): Promise<void> {
    const now = this.now();
    const r: RolloutRecord = {
      product: release.product, channel: release.channel, version: release.version, phases: plan.phases, phase: 0,
      state: plan.phases.length === 1 ? 'complete' : 'active', every: plan.every, haltAt: plan.haltAt, minDevices: plan.minDevices,
      phaseStartedAt: now, updatedAt: now,
    };
    await this.store.putRollout(r);
    this.remember(r);
    this.changes.changed(release.product, 'rollouts');
  }

  /** The rollout of one release as it stands now, if it was staged. */
  get(product: string, channel: string, version: string): RolloutRecord | undefined {
    const r = this.byKey.get(key(product, channel, version));
    return r && { ...r, ...rolloutAt(r, this.now()) };
  }

  /**
   * What a check offers a device running `current` (docs/design.md "Staged rollouts"): the highest
   * release not yanked whose rollout is complete (or that was not staged), or whose current percent
   * holds this device; a higher staged one that does not hold it (or was aborted) is the hint.
   */
  decide(deviceId: string, product: string, channel: string, current: string | null): RolloutDecision {
    const latest = this.releases.latestOf(product, channel);
    if (!this.staged.has(`${product}\u0000${channel}`)) return { offer: latest, hint: undefined };
    let hint: RolloutHint | undefined;
    for (const release of this.releases.openOf(product, channel)) {
      if (!isHigher(release.version, current)) break;
      const r = this.get(product, channel, release.version);
      if (!r || r.state === 'complete') return { offer: release, hint };
      if (r.state !== 'aborted') {
        const placement = rolloutPlacement(deviceId, product, release.version);
        if (insidePercent(placement, r.phases[r.phase]!)) return { offer: release, hint };
        if (!hint) {
          const opens = phaseOpensAt(r, placement);
          hint = { version: release.version, opensAt: opens ? opens.toISOString() : null, spreadSeconds: rolloutSpreadSeconds(r.every, this.o.scheduleSpread(product, channel)) };
        }
      } else if (!hint) {
        hint = { version: release.version, opensAt: null, spreadSeconds: 0 };
      }
    }
    return { offer: undefined, hint };
  }

  /** False when a staged rollout holds `version` back from this device now (aborted, or outside the phase). */
  offers(deviceId: string, product: string, channel: string, version: string): boolean {
    const r = this.get(product, channel, version);
    if (!r || r.state === 'complete') return true;
    return r.state !== 'aborted' && insidePercent(rolloutPlacement(deviceId, product, version), r.phases[r.phase]!);
  }

  /**
   * The rollout that never offered `version` to this device, or undefined when it did (or the
   * release was not staged). Phases only go up, so "offered at some time" is "inside the current
   * phase's percent"; an aborted rollout keeps the phase it was aborted at, so a device that was
   * inside may still report how that update ended. A report about a release its rollout held
   * back from the device is a lie (found by an attacker: devices outside the phase could halt a
   * rollout with failure reports, or hide real failures behind invented `applied` ones).
   */
  neverOffered(deviceId: string, product: string, channel: string, version: string): RolloutRecord | undefined {
    const r = this.get(product, channel, version);
    if (!r || r.state === 'complete') return undefined;
    return insidePercent(rolloutPlacement(deviceId, product, version), r.phases[r.phase]!) ? undefined : r;
  }

  /** The current rollout of each channel (the rollout of its latest release) of a product, or of one channel. */
  current(product: string, channel?: string): RolloutRecord[] {
    const out: RolloutRecord[] = [];
    const channels = channel !== undefined ? [channel] : this.releases.channelsOf(product);
    for (const c of channels) {
      const latest = this.releases.latestOf(product, c);
      const r = latest && this.get(product, c, latest.version);
      if (r) out.push(r);
    }
    return out;
  }

  /** The admin view: the record as it stands now, with counts from the reports and the registry. */
  async view(r: RolloutRecord): Promise<RolloutView> {
    const [outcomes, offered] = await Promise.all([
      this.store.countRolloutOutcomes(r.product, r.channel, r.version),
      this.countOffered(r),
    ]);
    const next = nextPhaseAt(r);
    return {
      product: r.product, channel: r.channel, version: r.version, phases: r.phases, phase: r.phase,
      percent: r.state === 'aborted' ? 0 : r.phases[r.phase]!, state: r.state, every: r.every, haltAt: r.haltAt, minDevices: r.minDevices,
      phaseStartedAt: r.phaseStartedAt.toISOString(), nextPhaseAt: next ? next.toISOString() : null,
      counts: { offered, attempted: outcomes.attempted, applied: outcomes.applied, failed: outcomes.failed, rolledBack: outcomes.rolledBack },
    };
  }

  /** Devices of the product/channel whose placement is inside the current percent (read page by page). */
  private async countOffered(r: RolloutRecord): Promise<number> {
    if (r.state === 'aborted') return 0;
    const percent = r.phases[r.phase]!;
    let n = 0;
    let seen = 0;
    let after: string | null = null;
    do {
      const page = await this.store.listDevicePage({ product: r.product }, after, OFFERED_PAGE);
      for (const d of page.devices) {
        if (d.channel === r.channel && insidePercent(rolloutPlacement(d.deviceId, r.product, r.version), percent)) n++;
      }
      seen += page.devices.length;
      after = page.next;
    } while (after !== null && seen < OFFERED_MAX_DEVICES);
    return n;
  }

  /**
   * An operator's action on the channel's current rollout (docs/protocol.md). Throws
   * PW_NO_ROLLOUT when the channel's latest release was not staged, PW_ROLLOUT_STATE when the
   * action does not apply to its state.
   */
  async act(product: string, channel: string, action: RolloutAction): Promise<RolloutRecord> {
    this.products.require(product);
    return this.products.exclusive(product, async () => {
      await this.loadProduct(product);
      const latest = this.releases.latestOf(product, channel);
      const r = latest && this.get(product, channel, latest.version);
      if (!r) {
        throw new ApiError('PW_NO_ROLLOUT', `${product}/${channel} has no staged rollout${latest ? `: its latest release ${latest.version} went to every device` : ' (no release)'}; publish with \`patchwire publish --rollout 5%,25%,100%\``);
      }
      const now = this.now();
      const refuse = (why: string): never => {
        throw new ApiError('PW_ROLLOUT_STATE', `cannot ${action} the rollout of ${product}/${channel} ${r.version}: it is ${r.state}${why}`);
      };
      let next: RolloutRecord;
      if (r.state === 'complete') refuse(' (every device is offered it); yank it with `patchwire release yank` to stop offering it');
      if (action === 'abort') {
        next = { ...r, state: 'aborted' };
      } else if (r.state === 'aborted') {
        return refuse('; an abort is final: publish a higher version');
      } else if (action === 'pause') {
        next = r.state === 'active' ? { ...r, state: 'paused' } : r;
      } else if (action === 'resume') {
        // The next phase's wait counts from the resume.
        next = r.state === 'active' ? r : { ...r, state: 'active', phaseStartedAt: now };
      } else {
        const phase = r.phase + 1;
        next = { ...r, phase, phaseStartedAt: now, state: phase >= r.phases.length - 1 ? 'complete' : r.state };
      }
      if (next !== r) await this.save({ ...next, updatedAt: now });
      return next;
    });
  }

  private async save(r: RolloutRecord): Promise<void> {
    await this.store.putRollout(r);
    this.remember(r);
    this.changes.changed(r.product, 'rollouts');
  }

  /**
   * After a failed or rolled-back report: halts an active rollout of the release the device
   * attempted when failing devices reach haltAt percent of at least minDevices attempts.
   */
  async afterReport(product: string, channel: string, version: string): Promise<void> {
    const r = this.get(product, channel, version);
    if (!r || r.haltAt === null || r.state !== 'active') return;
    const c = await this.store.countRolloutOutcomes(product, channel, version);
    if (c.attempted < r.minDevices || (c.failing * 100) / c.attempted < r.haltAt) return;
    const halted = await this.products.exclusive(product, async () => {
      await this.loadProduct(product);
      const fresh = this.get(product, channel, version);
      if (!fresh || fresh.state !== 'active') return false;
      await this.save({ ...fresh, state: 'halted', updatedAt: this.now() });
      return true;
    });
    if (!halted) return;
    const alarm = this.haltedAlarm({ ...r, state: 'halted', updatedAt: this.now() }, c);
    this.o.alarm(`rollout-halted: ${product}/${channel} ${version} halted itself at ${r.phases[r.phase]}%: ${c.failed} failed and ${c.rolledBack} rolled back (${c.failing} devices) of ${c.attempted} that attempted it reached --halt-at ${r.haltAt}%; ` +
      `look at the failures (\`patchwire devices --product ${product}\`), then \`patchwire rollout resume\` or \`abort --product ${product} --channel ${channel}\``, alarm);
  }

  private haltedAlarm(r: RolloutRecord, c: { attempted: number; failed: number; rolledBack: number }): RolloutHaltedAlarm {
    return {
      kind: 'rollout-halted', product: r.product, channel: r.channel, version: r.version,
      attempted: c.attempted, failed: c.failed, rolledBack: c.rolledBack, haltAt: r.haltAt ?? 0, since: r.updatedAt.toISOString(),
    };
  }

  /** The `rollout-halted` alarms of halted rollouts (of one product when given), for status. */
  async alarms(product?: string): Promise<AlarmView[]> {
    const out: AlarmView[] = [];
    for (const r of this.byKey.values()) {
      if (r.state !== 'halted' || (product !== undefined && r.product !== product)) continue;
      out.push(this.haltedAlarm(r, await this.store.countRolloutOutcomes(r.product, r.channel, r.version)));
    }
    return out;
  }

  /**
   * The background job: writes down phases that `every` moved on (and `complete`), so the store
   * and the admin views agree with what checks already offer. Runs under the cluster's
   * 'rollouts' lock (one process at a time); changes under each product's lock.
   */
  async tick(): Promise<number> {
    const now = this.now();
    let moved = 0;
    const due = [...this.byKey.values()].filter((r) => r.state === 'active' && rolloutAt(r, now).phase !== r.phase);
    for (const product of new Set(due.map((r) => r.product))) {
      moved += await this.products.exclusive(product, async () => {
        await this.loadProduct(product);
        let n = 0;
        for (const r of [...this.byKey.values()]) {
          if (r.product !== product || r.state !== 'active') continue;
          const at = rolloutAt(r, now);
          if (at.phase === r.phase && at.state === r.state) continue;
          await this.save({ ...r, ...at, updatedAt: now });
          n++;
        }
        return n;
      });
    }
    return moved;
  }

  /** For the mirror catalog: every rollout as stored. */
  async sync(): Promise<RolloutSync[]> {
    return (await this.store.listRollouts()).map(toRolloutSync);
  }
}

export function toRolloutSync(r: RolloutRecord): RolloutSync {
  return {
    product: r.product, channel: r.channel, version: r.version, phases: r.phases, phase: r.phase, state: r.state,
    every: r.every, haltAt: r.haltAt, minDevices: r.minDevices, phaseStartedAt: r.phaseStartedAt.toISOString(), updatedAt: r.updatedAt.toISOString(),
  };
}
