import type { Command } from 'commander';
import { toCliError } from './check.js';

type Agent = typeof import('../agent/index.js');

/**
 * Registers an agent command that works on the install folder alone (`rollback`, `retry`):
 * `--dir`, `--json`; the agent's errors mapped to exit codes as `check` does.
 */
export function registerLocalAgentCommand<R>(
  program: Command,
  name: string,
  description: string,
  run: (agent: Agent, dir: string) => Promise<R>,
  line: (r: R, dir: string) => string,
): void {
  program
    .command(name)
    .description(description)
    .requiredOption('--dir <INSTALL_DIR>', 'install folder prepared by `patchwire init`')
    .option('--json', 'print the result as one JSON document on stdout', false)
    .action(async (flags: { dir: string; json: boolean }) => {
      const agent = await import('../agent/index.js');
      let r: R;
      try {
        r = await run(agent, flags.dir);
      } catch (err) {
        throw toCliError(err, agent.isBadInputError);
      }
      process.stdout.write(flags.json ? `${JSON.stringify(r)}\n` : `${line(r, flags.dir)}\n`);
    });
}
