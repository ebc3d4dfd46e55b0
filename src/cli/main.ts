import { commands } from './commands.js';
import { runCli } from './run-cli.js';

/** Runs the full CLI; resolves to the process exit code (0 ok, 1 failure, 2 bad usage or input). */
export function main(argv: string[]): Promise<number> {
  return runCli(argv, commands);
}
