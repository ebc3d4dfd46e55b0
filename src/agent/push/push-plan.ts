import { isHigher } from '../../protocol/version.js';
import { spreadOffsetSeconds } from '../schedule.js';
import type { PushAnnouncement } from './push-listener.js';

/** A push-triggered check comes at least this long after the previous check ended: a hostile stream cannot make the device check without pause. */
export const MIN_PUSH_GAP_MS = 5_000;
/** With no spread to follow (a schedule with `--spread 0`), a device still waits its own offset in [0, 2 s). */
export const PUSH_JITTER_MS = 2_000;
/** A push-triggered check that did not find the announced version (a server behind) is retried so often, 5 s apart and doubling. */
export const PUSH_RETRIES = 3;
const RETRY_FIRST_MS = 5_000;

/** What the plan reads of the device: what it runs and what it holds back. */
export interface DeviceView {
  deviceId: string;
  version: string | null;
  rolledBack: string | null;
}

/**
 * When the agent runs a check because its event stream announced a release: the device's
 * offset inside the announced spread (from its device id, so a fleet spreads out the same way
 * every time), never sooner than MIN_PUSH_GAP_MS after the last check. Announcements of a version
 * the device runs, or holds back, are ignored.
 */
export class PushPlan {
  #dueAt: number | undefined;
  #version: string | undefined;
  #retries = 0;

  /** Epoch ms of the push-triggered check to run, if one is planned. */
  get dueAt(): number | undefined {
    return this.#dueAt;
  }

  /** Plans a check for `a` when the device is behind it; true when that moved the planned time earlier. */
  announce(a: PushAnnouncement, device: DeviceView, nowMs: number, lastCheckEndMs: number): boolean {
    if (!isHigher(a.version, device.version)) return false;
    if (device.rolledBack !== null && !isHigher(a.version, device.rolledBack)) return false;
    const offsetMs = a.spreadSeconds > 0
      ? spreadOffsetSeconds(device.deviceId, a.spreadSeconds) * 1000
      : spreadOffsetSeconds(device.deviceId, PUSH_JITTER_MS);
    const at = Math.max(nowMs + offsetMs, lastCheckEndMs + MIN_PUSH_GAP_MS);
    if (this.#version === undefined || isHigher(a.version, this.#version)) {
      this.#version = a.version;
      this.#retries = 0;
    }
    if (this.#dueAt !== undefined && this.#dueAt <= at) return false;
    this.#dueAt = at;
    return true;
  }

  /** The planned check starts now: it is no longer pending (a retry may plan it again). */
  take(): void {
    this.#dueAt = undefined;
  }

  /**
   * After any check: done when the device reached the announced version, or will not take it
   * (held back, rolled back). Updated to a lower version (a higher one was announced meanwhile):
   * checks again. Found the server not offering it yet (answered by a process whose cache is
   * behind): retried up to PUSH_RETRIES times.
   */
  checked(result: { result: string; version: string | null }, nowMs: number): void {
    if (this.#version === undefined || result.result === 'not-due') return;
    const reached = !isHigher(this.#version, result.version);
    const retry = result.result === 'up-to-date' && this.#retries < PUSH_RETRIES;
    if (reached || (result.result !== 'updated' && !retry)) {
      this.#version = undefined;
      this.#dueAt = undefined;
      this.#retries = 0;
      return;
    }
    if (result.result === 'updated') {
      this.#dueAt ??= nowMs + MIN_PUSH_GAP_MS;
      return;
    }
    this.#dueAt ??= nowMs + RETRY_FIRST_MS * 2 ** this.#retries;
    this.#retries += 1;
  }
}
