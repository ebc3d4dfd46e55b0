import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { CliError } from './cli-error.js';
import { errorText } from '../util/error-text.js';
import type { CheckResult } from '../agent/check.js';

/**
 * One check in a child process (`patchwire check --dir D --json`): the waiting agent then never
 * loads the TUF client, tar reader or HTTP stack, and stays near Node's own footprint
 * (bench/README.md). A kill of the child at any instant is safe: every step is atomic on disk.
 */
function checkInChild(dir: string): Promise<CheckResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [process.argv[1]!, 'check', '--dir', dir, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) {
        try {
          return resolve(JSON.parse(out) as CheckResult);
        } catch {
          return reject(new Error(`patchwire check printed no JSON: ${out.slice(0, 200)}`));
        }
      }
      reject(new Error(err.trim().replace(/^patchwire: /, '') || `patchwire check exited ${code}`));
    });
  });
}

/**
 * `patchwire agent --dir D`: loads the state (a missing or corrupt one is bad usage, exit 2, not
 * something to retry forever), then checks whenever due until SIGTERM/SIGINT. Resolves to the exit code.
 */
export async function runAgentCommand(dir: string): Promise<number> {
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
  log(`${new Date().toISOString()} agent started for ${state.product} (${state.channel}) at ${state.server}, checking every ${state.intervalSeconds} s`);
  const controller = new AbortController();
  // `once`: a second signal while a check finishes falls back to Node's default (exit at once).
  const stop = (sig: NodeJS.Signals) => {
    log(`${new Date().toISOString()} ${sig} received: stopping after the current step`);
    controller.abort();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try {
    await runAgent({ dir, signal: controller.signal, log, check: () => checkInChild(dir) });
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
  log(`${new Date().toISOString()} agent stopped`);
  return 0;
}

export function register(program: Command): void {
  program
    .command('agent')
    .description('Run the agent forever: check whenever due, apply higher versions, retry failures with backoff. SIGTERM/SIGINT stop it cleanly.')
    .requiredOption('--dir <INSTALL_DIR>', 'install folder prepared by `patchwire init`')
    .action(async (flags: { dir: string }) => {
      const code = await runAgentCommand(flags.dir);
      if (code !== 0) throw new CliError('', code === 2 ? 2 : 1);
    });
}
