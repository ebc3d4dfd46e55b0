import { Command, CommanderError } from 'commander';
import { CliError } from './cli-error.js';
import { commands } from './commands.js';
import { errorText } from '../util/error-text.js';

/** Runs the CLI; resolves to the process exit code (0 ok, 1 failure, 2 bad usage or input). */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('patchwire')
    .description('Signed patch delivery: server, agent and operator tools.')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const register of commands) register(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are "errors" to commander; they succeeded.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return 0;
      return 2;
    }
    if (err instanceof CliError) {
      if (err.message) process.stderr.write(`patchwire: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`patchwire: ${errorText(err)}\n`);
    if (process.env.PATCHWIRE_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
