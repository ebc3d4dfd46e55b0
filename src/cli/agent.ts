import type { Command } from 'commander';
import { spawn, type ChildProcess } from 'node:child_process';
import { CliError } from './cli-error.js';
import { errorText } from '../util/error-text.js';
import type { CheckResult } from '../agent/check.js';

/** Exit codes of a check stopped by a signal (128 + its number), as `patchwire check` exits. */
const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/** The check child ended because it was stopped by a signal (it said so on its stderr). */
class CheckStoppedError extends Error {
  override name = 'CheckStoppedError';
}

/**
 * One check in a child process (`patchwire check --dir D --json`): the waiting agent then never
 * loads the TUF client, tar reader or HTTP stack, and stays near Node's own footprint
 * (bench/README.md). A kill of the child at any instant is safe: every step is atomic on disk.
 * `onSpawn` is handed the child, so a signal to the agent can be forwarded to it.
 */
function checkInChild(dir: string, force: boolean, onSpawn: (child: ChildProcess | undefined) => void): Promise<CheckResult> {
  return new Promise((resolve, reject) => {
    const args = [process.argv[1]!, 'check', '--dir', dir, '--json', ...(force ? ['--force'] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      onSpawn(undefined);
      if (code === 0) {
        try {
          return resolve(JSON.parse(out) as CheckResult);
        } catch {
          return reject(new Error(`patchwire check printed no JSON: ${out.slice(0, 200)}`));
        }
      }
      const message = err.trim().replace(/^patchwire: /, '') || `patchwire check exited ${code}`;
      reject(code === 130 || code === 143 ? new CheckStoppedError(message) : new Error(message));
    });
  });
}

/**
 * `patchwire agent --dir D`: loads the state (a missing or corrupt one is bad usage, exit 2, not
 * something to retry forever), then checks whenever due until SIGTERM/SIGINT. A signal is
 * forwarded to the check in progress, which stops at once (a download resumes by Range next
 * time); the agent waits for it, says so on stderr and exits 143/130. Stopped while waiting
 * between checks it exits 0. Unless `push` is false it holds the server's event stream open
 * while it waits (docs/design.md, "Push and pull"). Resolves to the exit code.
 */
export async function runAgentCommand(dir: string, opts: { push?: boolean } = {}): Promise<number> {
  const push = opts.push !== false;
  const [{ loadState }, { agentPaths }, { runAgent }, { isBadInputError }] = await Promise.all([
    import('../agent/state.js'), import('../agent/paths.js'), import('../agent/agent-loop.js'), import('../agent/errors.js'),
  ]);
  let state;
  try {
    state = await loadState(agentPaths(dir).state);
  } catch (err) {
    process.stderr.write(`patchwire: ${errorText(err)}\n`);
    return isBadInputError(err) ? 2 : 1;
  }
  const log = (line: string) => process.stdout.write(`${line}\n`);
  log(`${new Date().toISOString()} agent started for ${state.product} (${state.channel}) at ${state.server}, checking every ${state.intervalSeconds} s${push ? ' and when the server announces a release' : ' (push off)'}`);
  const controller = new AbortController();
  let child: ChildProcess | undefined;
  let stoppedBy: NodeJS.Signals | undefined;
  let interrupted = false;
  // `once`: a second signal falls back to Node's default (exit at once).
  const stop = (sig: NodeJS.Signals) => {
    log(`${new Date().toISOString()} ${sig} received: stopping`);
    stoppedBy = sig;
    controller.abort();
    if (child && child.exitCode === null) child.kill(sig);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const check = ({ force }: { force: boolean }) => checkInChild(dir, force, (c) => (child = c)).catch((err: unknown) => {
    if (err instanceof CheckStoppedError) {
      interrupted = true;
      process.stderr.write(`patchwire: ${err.message}\n`);
    }
    throw err;
  });
  try {
    await runAgent({ dir, signal: controller.signal, log, check, push });
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
  log(`${new Date().toISOString()} agent stopped`);
  return interrupted && stoppedBy ? SIGNAL_EXIT[stoppedBy]! : 0;
}

export function register(program: Command): void {
  program
    .command('agent')
    .description('Run the agent forever: check whenever due, apply higher versions, retry failures with backoff. SIGTERM/SIGINT stop it cleanly.')
    .requiredOption('--dir <INSTALL_DIR>', 'install folder prepared by `patchwire init`')
    .option('--no-push', 'do not hold the server\'s event stream open (for networks that cut long connections): check on the schedule alone')
    .action(async (flags: { dir: string; push: boolean }) => {
      const code = await runAgentCommand(flags.dir, { push: flags.push });
      if (code === 130 || code === 143) process.exit(code);
      if (code !== 0) throw new CliError('', code === 2 ? 2 : 1);
    });
}
