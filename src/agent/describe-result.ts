import type { CheckResult } from './check.js';

/**
 * One human line about a check, as `patchwire check` and `patchwire agent` print it. `dir` is the
 * install folder, named in the commands the line suggests.
 */
export function describeResult(r: CheckResult, dir = 'INSTALL_DIR'): string {
  const next = `next check at ${r.nextCheckAt}`;
  const retry = `fix the cause and run \`patchwire retry --dir ${dir}\` to try it again, or publish a higher version`;
  switch (r.result) {
    case 'updated':
      return `updated ${r.previousVersion ?? '(none)'} -> ${r.version} from ${r.server} (${r.patch?.kind ?? 'full'}, ${r.patch?.bytes ?? 0} bytes); ${next}`;
    case 'rolled-back':
      return `rolled back: ${r.rolledBackFrom ?? 'the new version'} failed its health check (${r.reason ?? 'no reason given'}), back at ${r.version ?? '(no version)'} (${r.server}); ${r.heldBack ?? 'it'} is held back: ${retry}; ${next}`;
    case 'install-failed':
      return `the first install's health check failed: ${r.heldBack} (${r.reason ?? 'no reason given'}); nothing is installed (${r.server}); ${r.heldBack} is held back: ${retry}; ${next}`;
    case 'held-back':
      return `holding back ${r.heldBack}: the server offers it but this device rolled back from it (failed health check or \`patchwire rollback\`); staying at ${r.version ?? '(no version)'} (${r.server}); ${retry}; ${next}`;
    case 'deferred':
      return `not yet: a staged rollout holds ${r.deferred?.version ?? 'a higher release'} back from this device (${r.deferred?.opensAt ? `its phase opens at ${r.deferred.opensAt}` : 'its phase time is not known yet'}); staying at ${r.version ?? '(no version yet)'} (${r.server}); ${next}`;
    case 'up-to-date':
      return `up to date at ${r.version ?? '(no version yet)'} (${r.server}); ${next}`;
    case 'not-due':
      // `agent` takes no --force: the forced check is a separate `check` run.
      return `not due; ${next} (to check now: \`patchwire check --dir ${dir} --force\`)`;
  }
}
