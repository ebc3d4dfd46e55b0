import type { Command } from 'commander';
import { CliError } from './cli-error.js';

interface CheckFlags {
  dir: string;
  force: boolean;
  json: boolean;
}

export function register(program: Command): void {
  program
    .command('check')
    .description('Run one pass of the agent: ask the server and apply a higher version when one exists.')
    .requiredOption('--dir <INSTALL_DIR>', 'install folder prepared by `patchwire init`')
    .option('--force', 'check now even if the next check is not due yet', false)
    .option('--json', 'print the result as one JSON document on stdout', false)
    .action(async (flags: CheckFlags) => {
      const agent = await import('../agent/index.js');
      const bar = process.stderr.isTTY ? progressBar() : undefined;
      let result;
      try {
        result = await agent.runCheck({ dir: flags.dir, force: flags.force, onProgress: bar?.update });
      } catch (err) {
        throw toCliError(err, agent.isBadInputError);
      } finally {
        bar?.done();
      }
      process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : `${agent.describeResult(result)}\n`);
    });
}

/**
 * Maps an agent error to the CLI's exit codes: bad input or a refused local request (bad state,
 * bad flags, nothing to roll back to) exits 2; network, server and verification failures exit 1.
 * The agent's messages already say what was wrong and what to do.
 */
export function toCliError(err: unknown, isBadInput: (err: unknown) => boolean): CliError {
  if (err instanceof CliError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new CliError(message, isBadInput(err) ? 2 : 1, { cause: err });
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
