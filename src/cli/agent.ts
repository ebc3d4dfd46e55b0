import type { Command } from 'commander';
import { toCliError } from './check.js';

export function register(program: Command): void {
  program
    .command('agent')
    .description('Run the agent forever: check whenever due, apply higher versions, retry failures with backoff. SIGTERM/SIGINT stop it cleanly.')
    .requiredOption('--dir <INSTALL_DIR>', 'install folder prepared by `patchwire init`')
    .action(async (flags: { dir: string }) => {
      const agent = await import('../agent/index.js');
      let state;
      try {
        // A folder that was never initialised is a usage error, not something to retry forever.
        state = await agent.loadState(agent.agentPaths(flags.dir).state);
      } catch (err) {
        throw toCliError(err, agent.isBadInputError);
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
        await agent.runAgent({ dir: flags.dir, signal: controller.signal, log });
      } finally {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
      }
      log(`${new Date().toISOString()} agent stopped`);
    });
}
