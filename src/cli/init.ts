import type { Command } from 'commander';
import { parseDuration } from '../protocol/index.js';
import { CliError } from './cli-error.js';
import { toCliError } from './check.js';

interface InitFlags {
  dir: string;
  server: string;
  product: string;
  root: string;
  channel: string;
  interval?: string;
  deviceId?: string;
}

export function register(program: Command): void {
  program
    .command('init')
    .description('Prepare an install folder for the agent: server address, product, trusted TUF root, device id.')
    .requiredOption('--dir <INSTALL_DIR>', 'install folder (created when missing); versions go to INSTALL_DIR/versions, the applied one is INSTALL_DIR/current')
    .requiredOption('--server <URL>', 'patchwire server address, e.g. http://updates.example.com:8080')
    .requiredOption('--product <P>', 'product name as created on the server')
    .requiredOption('--root <FILE>', "the product's signed TUF root metadata (written by `patchwire product create --root-out`)")
    .option('--channel <C>', 'release channel', 'stable')
    .option('--interval <DURATION>', 'time between checks, e.g. 15m, 1h, 1d (default 1h)')
    .option('--device-id <MAC>', 'device id to report instead of the primary network interface MAC (containers, tests)')
    .action(async (flags: InitFlags) => {
      let intervalSeconds: number | undefined;
      if (flags.interval !== undefined) {
        intervalSeconds = parseDuration(flags.interval);
        if (intervalSeconds === undefined || intervalSeconds < 1) {
          throw new CliError(`--interval ${JSON.stringify(flags.interval)} is not a duration of at least 1 second: use e.g. 90s, 15m, 1h, 1h30m, 1d`);
        }
      }
      const agent = await import('../agent/index.js');
      let state;
      try {
        state = await agent.initAgent({
          dir: flags.dir,
          server: flags.server,
          product: flags.product,
          channel: flags.channel,
          rootFile: flags.root,
          intervalSeconds,
          deviceId: flags.deviceId,
        });
      } catch (err) {
        throw toCliError(err, agent.isBadInputError);
      }
      process.stdout.write(
        `initialised ${agent.agentPaths(flags.dir).dir} for ${state.product} (${state.channel}) at ${state.server}, device id ${state.deviceId}; ` +
          `the first check is due now: run \`patchwire check --dir ${flags.dir}\` or \`patchwire agent --dir ${flags.dir}\`\n`,
      );
    });
}
