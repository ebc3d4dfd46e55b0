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
  healthCmd?: string;
  healthTimeout?: string;
  keep?: string;
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
    .option('--health-cmd <CMD>', 'shell command run after each update (cwd INSTALL_DIR/current, env PATCHWIRE_VERSION); a non-zero exit or a timeout switches back and reports rolled-back')
    .option('--health-timeout <DURATION>', 'how long the health command may take, e.g. 30s, 2m (default 30s)')
    .option('--keep <N>', 'how many previous versions to keep in INSTALL_DIR/versions after an update (default 2)')
    .action(async (flags: InitFlags) => {
      let intervalSeconds: number | undefined;
      if (flags.interval !== undefined) {
        intervalSeconds = parseDuration(flags.interval);
        if (intervalSeconds === undefined || intervalSeconds < 1) {
          throw new CliError(`--interval ${JSON.stringify(flags.interval)} is not a duration of at least 1 second: use e.g. 90s, 15m, 1h, 1h30m, 1d`);
        }
      }
      let healthTimeoutSeconds: number | undefined;
      if (flags.healthTimeout !== undefined) {
        if (flags.healthCmd === undefined) throw new CliError('--health-timeout needs --health-cmd: give the health command too');
        healthTimeoutSeconds = parseDuration(flags.healthTimeout);
        if (healthTimeoutSeconds === undefined || healthTimeoutSeconds < 1) {
          throw new CliError(`--health-timeout ${JSON.stringify(flags.healthTimeout)} is not a duration of at least 1 second: use e.g. 10s, 30s, 2m`);
        }
      }
      let keep: number | undefined;
      if (flags.keep !== undefined) {
        if (!/^\d{1,4}$/.test(flags.keep.trim())) throw new CliError(`--keep ${JSON.stringify(flags.keep)} is not a whole number: give how many previous versions to keep, e.g. 2`);
        keep = Number(flags.keep.trim());
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
          healthCmd: flags.healthCmd,
          healthTimeoutSeconds,
          keep,
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
