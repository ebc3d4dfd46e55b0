import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { REPORT_EVENTS, type CheckResponse, type ReportEvent } from '../../protocol/wire.js';
import type { Clock } from '../clock.js';
import type { ServedKind } from '../services/releases.js';
import { FleetSnapshot, type FleetSources } from './fleet-snapshot.js';
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

    const fleet = this.fleet;
    new Gauge({
      name: 'patchwire_devices', help: 'Devices in the registry by product, channel and applied version (none: nothing applied yet)',
      labelNames: ['product', 'channel', 'version'], registers,
      async collect() {
        const { devices } = await fleet.get();
        this.reset();
        for (const d of devices) this.set({ product: d.product, channel: d.channel, version: d.version ?? 'none' }, d.devices);
      },
    });
    new Gauge({
      name: 'patchwire_mirror_sync_age_seconds', help: 'Seconds since each approved mirror was last consolidated (mirrors never synced are not listed)',
      labelNames: ['mirror'], registers,
      async collect() {
        const { mirrors } = await fleet.get();
        this.reset();
        const now = o.clock().getTime();
        for (const m of mirrors) if (m.lastSyncAt) this.set({ mirror: m.url }, Math.max(0, (now - m.lastSyncAt.getTime()) / 1000));
      },
    });
    new Gauge({
      name: 'patchwire_alarms', help: 'Open alarms by kind',
      labelNames: ['kind'], registers,
      async collect() {
        const { alarms } = await fleet.get();
        this.reset();
        for (const [kind, n] of Object.entries(alarms)) this.set({ kind }, n);
      },
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
