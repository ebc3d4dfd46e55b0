import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { RuntimeView } from '../../protocol/wire.js';

/** Sampling interval of the event-loop delay histograms (a timer this often; negligible cost). */
const RESOLUTION_MS = 10;

/**
 * What an operator (or bench/fleet.ts) reads to see whether the process keeps up: the event
 * loop's delay (perf_hooks.monitorEventLoopDelay). A delay is how late the sampling timer fired
 * beyond its interval, so an idle loop reads ~0 and a 50 ms synchronous stall reads ~40-50 ms
 * (within one interval). Two windows: since the process started (GET /v1/admin/status), and since
 * the previous GET /v1/admin/runtime (each read of it starts a new window, so a monitor polling it
 * sees each stall once, and a bench can measure one run).
 */
export class RuntimeStats {
  readonly #sinceStart: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  readonly #window: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  #started = new Date();
  #windowStart = new Date();

  start(): void {
    this.#sinceStart.enable();
    this.#window.enable();
    this.#started = this.#windowStart = new Date();
  }

  stop(): void {
    this.#sinceStart.disable();
    this.#window.disable();
  }

  /** Since the process started. */
  total(): RuntimeView {
    return view(this.#sinceStart, this.#started);
  }

  /** Since the previous call, then a new window. */
  window(): RuntimeView {
    const v = view(this.#window, this.#windowStart);
    this.#window.reset();
    this.#windowStart = new Date();
    return v;
  }
}

function view(h: IntervalHistogram, since: Date): RuntimeView {
  const ms = (ns: number) => (h.count === 0 ? 0 : Math.max(0, Math.round((ns / 1e6 - RESOLUTION_MS) * 100) / 100));
  return {
    since: since.toISOString(),
    uptimeSeconds: Math.round(process.uptime()),
    eventLoopDelayMs: { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), samples: h.count },
    rssBytes: process.memoryUsage.rss(),
  };
}
