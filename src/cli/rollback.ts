import type { Command } from 'commander';
import { toCliError } from './check.js';

export function register(program: Command): void {
  program
    .command('rollback')
    .description('Switch back to the version applied before the last update, and never reinstall the version left.')
    .requiredOption('--dir <INSTALL_DIR>', 'install folder prepared by `patchwire init`')
    .option('--json', 'print the result as one JSON document on stdout', false)
    .action(async (flags: { dir: string; json: boolean }) => {
      const agent = await import('../agent/index.js');
      let r;
      try {
        r = await agent.rollback({ dir: flags.dir });
      } catch (err) {
        throw toCliError(err, agent.isBadInputError);
      }
      const report = r.reported ? `reported to ${r.server}` : 'the report to the server is pending and goes out with the next check';
      process.stdout.write(flags.json ? `${JSON.stringify(r)}\n` : `rolled back from ${r.rolledBackFrom ?? '(none)'} to ${r.version}; ${report}\n`);
    });
}
