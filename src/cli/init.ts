import type { Command } from 'commander';
import { isName, parseDuration } from '../protocol/index.js';
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
  json: boolean;
  skipServerCheck: boolean;
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
    .option('--skip-server-check', 'do not ask the server whether the product and channel exist (e.g. a channel before its first release)', false)
    .option('--json', 'print the result as one JSON document on stdout', false)
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
      let serverCheck: Awaited<ReturnType<typeof agent.checkEnrolment>> | { verdict: 'skipped' } = { verdict: 'skipped' };
      try {
        // Only well-formed names are worth asking about (initAgent names a malformed one); the
        // server is asked before anything is written, so a typo changes nothing.
        const askable = agent.normaliseServerUrl(flags.server) !== undefined && isName(flags.product) && isName(flags.channel);
        if (!flags.skipServerCheck && askable) serverCheck = await agent.checkEnrolment({ server: flags.server, product: flags.product, channel: flags.channel });
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
      const dir = agent.agentPaths(flags.dir).dir;
      if (serverCheck.verdict === 'unreachable') {
        process.stderr.write(`patchwire: warning: could not check product and channel with the server (${serverCheck.message}); initialised anyway: the first check will tell\n`);
      }
      if (flags.json) {
        const out = { dir, deviceId: state.deviceId, product: state.product, channel: state.channel, server: state.server, serverCheck };
        process.stdout.write(`${JSON.stringify(out)}\n`);
        return;
      }
      const checked = serverCheck.verdict === 'ok' ? 'the server knows this product and channel' : serverCheck.verdict === 'skipped' ? 'not checked with the server' : 'the server could not be asked';
      process.stdout.write(
        `initialised ${dir} for ${state.product} (${state.channel}) at ${state.server} (${checked}); ` +
          `device id ${state.deviceId}: one record per product on the server, shared by every folder of this product on this host unless each has its own --device-id; ` +
          `the first check is due now: run \`patchwire check --dir ${flags.dir}\` or \`patchwire agent --dir ${flags.dir}\`\n`,
      );
    });
}
