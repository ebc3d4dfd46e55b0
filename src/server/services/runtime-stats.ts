import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { RuntimeView } from '../../protocol/wire.js';

/** Sampling interval of the event-loop delay histogram (a timer this often; negligible cost). */
const RESOLUTION_MS = 10;

/**
 * What an operator (or bench/fleet.ts) reads to see whether the process keeps up: the event
 * loop's delay (perf_hooks.monitorEventLoopDelay) over the window since the previous read of
 * `GET /v1/admin/status`, or since start. A delay is how late the sampling timer fired beyond its
 * interval, so an idle loop reads ~0 and a 50 ms synchronous stall reads ~40-50 ms (within one
 * interval). Each read starts a new window, so a stall is reported once.
 */
export class RuntimeStats {
  readonly #eld: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  #since = new Date();

  start(): void {
    this.#eld.enable();
    this.#since = new Date();
  }

  stop(): void {
    this.#eld.disable();
  }

  /** The window since the previous read, then a new window. */
  read(): RuntimeView {
    const h = this.#eld;
    const ms = (ns: number) => (h.count === 0 ? 0 : Math.max(0, Math.round((ns / 1e6 - RESOLUTION_MS) * 100) / 100));
    const view: RuntimeView = {
      since: this.#since.toISOString(),
      uptimeSeconds: Math.round(process.uptime()),
      eventLoopDelayMs: { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), samples: h.count },
      rssBytes: process.memoryUsage.rss(),
    };
    h.reset();
    this.#since = new Date();
    return view;
  }
}
