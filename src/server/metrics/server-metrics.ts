import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { REPORT_EVENTS, type CheckResponse, type ReportEvent } from '../../protocol/wire.js';
import type { Clock } from '../clock.js';
import type { ServedKind } from '../services/releases.js';
import { FleetSnapshot, type FleetFigures, type FleetSources } from './fleet-snapshot.js';
import { RolloutMetrics, type RolloutView } from './rollout-metrics.js';

/** The `result` label of patchwire_checks_total: the check answer's status, `moved`, or `error`. */
export type CheckResult = 'update' | 'up-to-date' | 'moved' | 'error';
const CHECK_RESULTS: readonly CheckResult[] = ['update', 'up-to-date', 'moved', 'error'];
const SERVED_KINDS: readonly ServedKind[] = ['full', 'delta', 'notice'];

/** Seconds; from a 1 ms check answer to a minutes-long archive download. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** How long the store's fleet figures are reused between scrapes (default of `fleetCacheMs`). */
export const FLEET_CACHE_MS = 5000;

export interface ServerMetricsOptions {
  fleet: FleetSources;
  /** The server's clock: mirror sync ages are measured on it. */
  clock: Clock;
  /** Reuse the store's figures for this long (default FLEET_CACHE_MS). */
  fleetCacheMs?: number;
  /** Node's process metrics (CPU, memory, event loop, GC): on for a server process, off for the many servers a test runs in one process. */
  processMetrics?: boolean;
  /**
   * The staged rollouts to show, read at every scrape. Left for the staged-rollout service to
   * fill in (the lead wires it on merging); without it the rollout gauges are empty.
   */
  rollouts?: () => RolloutView[] | Promise<RolloutView[]>;
}

/**
 * Everything GET /metrics shows, in a registry of this server's own (never prom-client's global
 * one: tests run several servers in one process). Counters are per process (each process of a
 * cluster counts what it answered; sum them); the fleet gauges are read from the shared store
 * (every process shows the same figures; take one, or max).
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly fleet: FleetSnapshot;
  readonly rollouts: RolloutMetrics;
  private readonly checks: Counter<'result'>;
  private readonly reports: Counter<'event'>;
  private readonly servedBytes: Counter<'kind'>;
  private readonly durations: Histogram<'method' | 'route' | 'status'>;

  constructor(o: ServerMetricsOptions) {
    const registers = [this.registry];
    this.fleet = new FleetSnapshot(o.fleet, o.fleetCacheMs ?? FLEET_CACHE_MS);
    this.checks = new Counter({ name: 'patchwire_checks_total', help: 'Check answers by result: update (a release offered), up-to-date, moved (a moved notice in the answer), error (refused)', labelNames: ['result'], registers });
    this.reports = new Counter({ name: 'patchwire_reports_total', help: 'Device reports accepted, by event', labelNames: ['event'], registers });
    this.servedBytes = new Counter({ name: 'patchwire_served_bytes_total', help: 'Artifact bytes written to devices and mirrors by this process, by kind: full (release archives), delta, notice (moved notices)', labelNames: ['kind'], registers });
    this.durations = new Histogram({ name: 'patchwire_http_request_duration_seconds', help: 'HTTP request durations by method, route pattern and status', labelNames: ['method', 'route', 'status'], buckets: DURATION_BUCKETS, registers });
    // Every label value from the start, so a rate reads 0 rather than "no data".
    for (const result of CHECK_RESULTS) this.checks.inc({ result }, 0);
    for (const event of REPORT_EVENTS) this.reports.inc({ event }, 0);
    for (const kind of SERVED_KINDS) this.servedBytes.inc({ kind }, 0);

    // Each fleet gauge shows exactly what the (cached) figures of this scrape say.
    const fleetGauge = <L extends string>(name: string, help: string, labelNames: L[], fill: (g: Gauge<L>, f: FleetFigures) => void) => {
      const fleet = this.fleet;
      new Gauge({ name, help, labelNames, registers, async collect() { const f = await fleet.get(); this.reset(); fill(this, f); } });
    };
    fleetGauge('patchwire_devices', 'Devices in the registry by product, channel and applied version (none: nothing applied yet)', ['product', 'channel', 'version'], (g, f) => {
      for (const d of f.devices) g.set({ product: d.product, channel: d.channel, version: d.version ?? 'none' }, d.devices);
    });
    fleetGauge('patchwire_mirror_sync_age_seconds', 'Seconds since each approved mirror was last consolidated (mirrors never synced are not listed)', ['mirror'], (g, f) => {
      const now = o.clock().getTime();
      for (const m of f.mirrors) if (m.lastSyncAt) g.set({ mirror: m.url }, Math.max(0, (now - m.lastSyncAt.getTime()) / 1000));
    });
    fleetGauge('patchwire_alarms', 'Open alarms by kind', ['kind'], (g, f) => {
      for (const [kind, n] of Object.entries(f.alarms)) g.set({ kind }, n);
    });
    this.rollouts = new RolloutMetrics(this.registry, o.rollouts);
    if (o.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** A check answered (the route counts refusals through `requestDone`). */
  checked(answer: CheckResponse): void {
    this.checks.inc({ result: answer.moved ? 'moved' : answer.status });
  }

  reported(event: ReportEvent): void {
    this.reports.inc({ event });
  }

  served(kind: ServedKind, bytes: number): void {
    this.servedBytes.inc({ kind }, bytes);
  }

  /** One finished request: `route` is the pattern it matched (never the raw URL, so labels stay few). */
  requestDone(method: string, route: string, status: number, seconds: number, isCheck: boolean): void {
    this.durations.observe({ method, route, status: String(status) }, seconds);
    if (isCheck && status >= 400) this.checks.inc({ result: 'error' });
  }

  /** The Prometheus text exposition. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
