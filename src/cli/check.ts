import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { errorText } from '../util/error-text.js';
import { setTimeout as delay } from 'node:timers/promises';
import { parseDuration } from '../protocol/duration.js';

interface CheckFlags {
  dir: string;
  force: boolean;
  json: boolean;
  lockWait?: string;
}

/** Exit codes of a check stopped by a signal: 128 + the signal's number, as a shell reports it. */
const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

export function register(program: Command): void {
  program
    .command('check')
    .description('Run one pass of the agent: ask the server and apply a higher version when one exists.')
    .requiredOption('--dir <INSTALL_DIR>', 'install folder prepared by `patchwire init`')
    .option('--force', 'check now even if the next check is not due yet', false)
    .option('--json', 'print the result as one JSON document on stdout', false)
    .option('--lock-wait <DURATION>', 'how long to wait while another patchwire command works on the folder, e.g. 0s, 30s (default 10s)')
    .action(async (flags: CheckFlags) => {
      let lockWaitMs: number | undefined;
      if (flags.lockWait !== undefined) {
        const seconds = parseDuration(flags.lockWait);
        if (seconds === undefined) throw new CliError(`--lock-wait ${JSON.stringify(flags.lockWait)} is not a duration: use e.g. 0s, 30s, 5m`);
        lockWaitMs = seconds * 1000;
      }
      // The check's own modules, not the library's index (push, init, ...): less to load at start.
      const [{ runCheck }, { describeResult }, { isBadInputError }] = await Promise.all([
        import('../agent/check.js'), import('../agent/describe-result.js'), import('../agent/errors.js'),
      ]);
      const agent = { runCheck, describeResult, isBadInputError };
      const bar = process.stderr.isTTY ? progressBar() : undefined;
      // SIGINT/SIGTERM abort the check at once (the download stops mid-stream; the saved update
      // state and the partial file resume it by Range next time) instead of killing it silently.
      const controller = new AbortController();
      let stoppedBy: NodeJS.Signals | undefined;
      let received = 0;
      let total = 0;
      const stop = (sig: NodeJS.Signals) => {
        if (stoppedBy) return; // The same signal from the terminal and from a parent agent.
        stoppedBy = sig;
        controller.abort();
        // Whatever does not stop on the abort must not keep the process alive.
        setTimeout(() => process.exit(SIGNAL_EXIT[sig]), 3000).unref();
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      let result;
      try {
        result = await agent.runCheck({
          dir: flags.dir, force: flags.force, lockWaitMs, signal: controller.signal, faults: faultsFromEnv(process.env, controller.signal),
          onProgress: (n, of) => {
            received = n;
            total = of;
            bar?.update(n, of);
          },
        });
      } catch (err) {
        bar?.done();
        if (stoppedBy) {
          const resume = received > 0 && received < total ? `the download resumes at byte ${received} on the next check` : 'the next check carries on from here';
          process.stderr.write(`patchwire: stopped by ${stoppedBy}; ${resume}\n`);
          process.exit(SIGNAL_EXIT[stoppedBy]);
        }
        throw toCliError(err, agent.isBadInputError);
      } finally {
        bar?.done();
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
      }
      for (const w of result.warnings ?? []) process.stderr.write(`patchwire: warning: ${w}\n`);
      const line = agent.describeResult(result, flags.dir);
      // A failed health check is a failure of this check (exit 1), said on stderr; under --json
      // the result is still printed, so scripts and `patchwire agent` read what happened.
      const failed = result.result === 'rolled-back' || result.result === 'install-failed';
      if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else if (!failed) process.stdout.write(`${line}\n`);
      if (failed) throw new CliError(line, 1, { resultPrinted: flags.json === true });
    });
}

/**
 * TEST HOOK, not for production: with PATCHWIRE_ENABLE_FAULTS=1, PATCHWIRE_FAULT injects faults
 * into the update state machine: a comma-separated list of `<state>:<action>`, where state is a
 * machine state (`download`, `stage`, ...) or `*` for every state, and action is `crash` (SIGKILL
 * of this process), `error` (the state fails) or `delay:MS` (wait, then go on). Each state entered
 * is then also logged to stderr as `patchwire-fault: state <name>`. Without
 * PATCHWIRE_ENABLE_FAULTS=1 the variable is ignored. Throws CliError (exit 2) on a malformed list.
 */
export function faultsFromEnv(env: NodeJS.ProcessEnv, signal?: AbortSignal): ((state: string) => Promise<void>) | undefined {
  if (env.PATCHWIRE_ENABLE_FAULTS !== '1') return undefined;
  const rules: Array<{ state: string; action: string; ms: number }> = [];
  for (const item of (env.PATCHWIRE_FAULT ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = /^([a-z*][a-z0-9_-]*|\*):(crash|error|delay:(\d{1,6}))$/.exec(item);
    if (!m) throw new CliError(`PATCHWIRE_FAULT item ${JSON.stringify(item)} is malformed: use <state>:crash, <state>:error or <state>:delay:MS`);
    rules.push({ state: m[1]!, action: m[2]!.startsWith('delay') ? 'delay' : m[2]!, ms: Number(m[3] ?? 0) });
  }
  return async (state: string) => {
    process.stderr.write(`patchwire-fault: state ${state}\n`);
    for (const r of rules) {
      if (r.state !== state && r.state !== '*') continue;
      if (r.action === 'crash') {
        process.kill(process.pid, 'SIGKILL');
        await new Promise(() => {});
      }
      if (r.action === 'error') throw new Error(`injected fault in state ${state} (PATCHWIRE_FAULT)`);
      // A signal cuts the delay short, as it would cut the real work short.
      if (r.action === 'delay') await delay(r.ms, undefined, { signal }).catch(() => {});
    }
  };
}

/**
 * Maps an agent error to the CLI's exit codes: bad input or a refused local request (bad state,
 * bad flags, nothing to roll back to) exits 2; network, server and verification failures exit 1;
 * a device waiting for approval (PW_DEVICE_PENDING) exits 3.
 * The agent's messages already say what was wrong and what to do.
 */
export function toCliError(err: unknown, isBadInput: (err: unknown) => boolean): CliError {
  if (err instanceof CliError) return err;
  // The device waits for an operator (`devices accept`): not a failure of this machine; exit 3.
  if ((err as { code?: unknown })?.code === 'PW_DEVICE_PENDING' && (err as Error).name === 'DeviceAdmissionError') {
    return new CliError(errorText(err), 3, { cause: err, code: 'PW_DEVICE_PENDING' });
  }
  const bad = isBadInput(err);
  return new CliError(errorText(err), bad ? 2 : 1, { cause: err, code: agentErrorCode(err) ?? (bad ? 'PW_BAD_INPUT' : 'PW_FAILED') });
}

/** `--json` codes of agent refusals a script may want to tell apart (docs/errors.md, "Command line"). */
function agentErrorCode(err: unknown): string | undefined {
  const name = err instanceof Error ? err.name : '';
  if (name === 'UnverifiedAnswerError') return 'PW_UNVERIFIED_ANSWER';
  if (name === 'UnsafeFolderError') return 'PW_UNSAFE_FOLDER';
  if (name === 'DeviceAdmissionError') return (err as { code?: string }).code;
  return undefined;
}

/** A one-line download progress bar on stderr (only drawn on a terminal). */
function progressBar(): { update: (received: number, total: number) => void; done: () => void } {
  let drawn = false;
  let last = -1;
  return {
    update(received, total) {
      const pct = total > 0 ? Math.floor((received / total) * 100) : 100;
      if (pct === last) return;
      last = pct;
      drawn = true;
      const width = 30;
      const fill = Math.round((pct / 100) * width);
      process.stderr.write(`\rdownloading [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${String(pct).padStart(3)}% ${mb(received)} of ${mb(total)} MB`);
    },
    done() {
      if (drawn) process.stderr.write('\r\x1b[K');
    },
  };
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}
