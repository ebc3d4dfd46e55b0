import type { Command } from 'commander';

/**
 * The commands that run on a device, on the install folder: bin/patchwire.js runs them from the
 * bundle of this file (dist/device/patchwire-device.mjs, made by `npm run build`), every other
 * command from the full CLI. Kept in step with DEVICE_COMMANDS in bin/patchwire.js.
 */
export const DEVICE_COMMANDS = ['init', 'check', 'agent', 'rollback', 'retry'] as const;

/**
 * Runs a device command (argv as process.argv). `agent --dir D [--no-push]` starts without
 * commander (agent-fast-path.ts); the rest goes through the same commander program as the full
 * CLI, with only the device commands registered, so flags, help, usage errors and exit codes are
 * the full CLI's. Modules are imported when a command needs them: a check loads no TUF client
 * unless the server offers an update (bench/README.md, issue 13).
 */
export async function deviceMain(argv: string[]): Promise<number> {
  const args = argv.slice(2);
  if (args[0] === 'agent') {
    const { agentFastPath } = await import('./agent-fast-path.js');
    const code = await agentFastPath(args.slice(1));
    if (code !== undefined) return code;
  }
  const [{ runCli }, registers] = await Promise.all([import('./run-cli.js'), deviceRegisters(args[0])]);
  return runCli(argv, registers);
}

/** The register function of `name` alone (the program needs no other), or of every device command. */
async function deviceRegisters(name: string | undefined): Promise<Array<(program: Command) => void>> {
  switch (name) {
    case 'init': return [(await import('./init.js')).register];
    case 'check': return [(await import('./check.js')).register];
    case 'agent': return [(await import('./agent.js')).register];
    case 'rollback': return [(await import('./rollback.js')).register];
    case 'retry': return [(await import('./retry.js')).register];
    default: return Promise.all([import('./init.js'), import('./check.js'), import('./agent.js'), import('./rollback.js'), import('./retry.js')]).then((ms) => ms.map((m) => m.register));
  }
}

declare const PATCHWIRE_DEVICE_BUILD_ID: string | undefined;
/**
 * The build this bundle is of (dist/.build-stamp's text), set by esbuild (scripts/bundle-device.mjs);
 * undefined when this file runs unbundled (dist/src, tsx).
 */
export const DEVICE_BUILD_ID: string | undefined = typeof PATCHWIRE_DEVICE_BUILD_ID === 'string' ? PATCHWIRE_DEVICE_BUILD_ID : undefined;
