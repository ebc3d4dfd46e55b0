/**
 * The fields every agent command's result shares: `check --json`, `rollback --json` and
 * `retry --json` print one of these, with the same names and meanings (docs/design.md section 7).
 */
export interface AgentResult {
  /**
   * What the command did. check: `updated`, `up-to-date`, `not-due`, `held-back` (the offered
   * version is one the device rolled back from), `rolled-back` (the new version failed its health
   * check; `current` is back at the old one), `install-failed` (the first install failed its
   * health check; nothing is installed), `deferred` (a staged rollout holds a higher release
   * back from this device: `deferred` says which and when its phase opens). rollback:
   * `rolled-back`. retry: `hold-cleared`.
   */
  result: 'updated' | 'up-to-date' | 'deferred' | 'not-due' | 'held-back' | 'rolled-back' | 'install-failed' | 'hold-cleared';
  /** The version `current` points at after the command (null: nothing installed). */
  version: string | null;
  /** The version `current` pointed at before the command. */
  previousVersion: string | null;
  server: string;
  /** With `rolled-back`: the version that was installed and then left. */
  rolledBackFrom?: string;
  /**
   * With `held-back`, `rolled-back` and `install-failed`: the version the device does not install
   * until `patchwire retry` clears the hold (or a higher version is published).
   */
  heldBack?: string;
  /** With `rolled-back` (after a health check) and `install-failed`: why the health check failed. */
  reason?: string;
}
