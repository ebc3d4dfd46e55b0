import { Gauge, type Registry } from 'prom-client';

/**
 * One staged rollout as GET /metrics shows it. The staged-rollout service (issue 11, built in
 * parallel) gives these; the lead wires its list into `ServerMetricsOptions.rollouts` on merging.
 */
export interface RolloutView {
  product: string;
  channel: string;
  version: string;
  /** Index of the current phase in the plan (0: the first). */
  phase: number;
  /** Share of the fleet the current phase offers the release to, 0-100. */
  percent: number;
  /** e.g. `active`, `paused`, `halted`, `aborted`, `done`: used as a label as given. */
  state: string;
  counts: { offered: number; attempted: number; applied: number; failed: number; rolledBack: number };
}

/** The `outcome` label of patchwire_rollout_devices, per field of RolloutView.counts. */
const OUTCOMES = [['offered', 'offered'], ['attempted', 'attempted'], ['applied', 'applied'], ['failed', 'failed'], ['rolledBack', 'rolled-back']] as const;

/**
 * The rollout gauges. `record(views)` replaces what they show with exactly these rollouts (one
 * series set per product/channel/version: bounded by the releases). With a `source`, every
 * scrape records what it returns; without one the gauges stay empty.
 */
export class RolloutMetrics {
  private readonly phase: Gauge<'product' | 'channel' | 'version' | 'state'>;
  private readonly percent: Gauge<'product' | 'channel' | 'version'>;
  private readonly devices: Gauge<'product' | 'channel' | 'version' | 'outcome'>;

  /** The scrape in progress: its three gauges wait for one call of the source. */
  private pending: Promise<void> | undefined;

  constructor(registry: Registry, private readonly source?: () => RolloutView[] | Promise<RolloutView[]>) {
    const registers = [registry];
    // The registry collects every metric at once; each gauge waits for the same recording.
    const collect = () => this.collectOnce();
    const labelNames = ['product', 'channel', 'version'] as const;
    this.phase = new Gauge({ name: 'patchwire_rollout_phase', help: 'Current phase of each staged rollout (0: the first of its plan), labelled with its state', labelNames: [...labelNames, 'state'], registers, collect });
    this.percent = new Gauge({ name: 'patchwire_rollout_percent', help: 'Share of the fleet (0-100) the current phase of each rollout offers its release to', labelNames, registers, collect });
    this.devices = new Gauge({ name: 'patchwire_rollout_devices', help: 'Devices of each rollout by outcome (offered, attempted, applied, failed, rolled-back)', labelNames: [...labelNames, 'outcome'], registers, collect });
  }

  private collectOnce(): Promise<void> {
    if (!this.source) return Promise.resolve();
    const source = this.source;
    this.pending ??= (async () => {
      try {
        this.record(await source());
      } finally {
        this.pending = undefined;
      }
    })();
    return this.pending;
  }

  /** Shows exactly these rollouts (those no longer listed disappear). */
  record(views: RolloutView[]): void {
    this.phase.reset();
    this.percent.reset();
    this.devices.reset();
    for (const v of views) {
      const release = { product: v.product, channel: v.channel, version: v.version };
      this.phase.set({ ...release, state: v.state }, v.phase);
      this.percent.set(release, v.percent);
      for (const [field, outcome] of OUTCOMES) this.devices.set({ ...release, outcome }, v.counts[field]);
    }
  }
}
