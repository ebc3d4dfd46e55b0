import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { CliError } from './cli-error.js';
import { deferMandatoryOptions } from './mandatory-options.js';
import { useHelpTerms } from './help-terms.js';
import { errorText } from '../util/error-text.js';

/**
 * The package's version, read from package.json: three folders above dist/src/cli (../../../),
 * two above src/cli and the device bundle's dist/device (../../).
 */
function packageVersion(): string {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'patchwire' && pkg.version) return pkg.version;
    } catch {
      // not at this level; try the next
    }
  }
  return 'unknown';
}

/**
 * `--json` asked for on the command line (before a `--`): errors then go to stdout as
 * `{ "error": { "code", "message" } }` too, so a script reading stdout always gets one JSON document.
 */
function wantsJson(argv: string[]): boolean {
  const args = argv.slice(2);
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}

function printError(json: boolean, code: string, message: string): void {
  if (json) process.stdout.write(`${JSON.stringify({ error: { code, message } })}\n`);
}

/**
 * Runs a `patchwire` program made of `commands` (each registers itself, in help order); resolves
 * to the process exit code (0 ok, 1 failure, 2 bad usage or input). The full CLI (main.ts) and the
 * device's bundled CLI (device-main.ts) share it, so usage errors, help and exit codes are the same.
 */
export async function runCli(argv: string[], commands: ReadonlyArray<(program: Command) => void>): Promise<number> {
  const json = wantsJson(argv);
  const program = new Command('patchwire')
    .description('Signed patch delivery: server, agent and operator tools.')
    // Only `-V`/`--version` before any command: `publish --version V` stays the release's version.
    .version(packageVersion(), '-V, --version', 'print the patchwire version')
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  useHelpTerms(program);
  for (const register of commands) register(program);
  deferMandatoryOptions(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are "errors" to commander; they succeeded.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return 0;
      printError(json, 'PW_USAGE', err.message.replace(/^error: /, ''));
      return 2;
    }
    if (err instanceof CliError) {
      // An empty message: the command printed its own result and only sets the exit code.
      if (err.message) {
        process.stderr.write(`patchwire: ${err.message}\n`);
        if (!err.resultPrinted) printError(json, err.code, err.message);
      }
      return err.exitCode;
    }
    process.stderr.write(`patchwire: ${errorText(err)}\n`);
    if (process.env.PATCHWIRE_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    printError(json, 'PW_FAILED', errorText(err));
    return 1;
  }
}
