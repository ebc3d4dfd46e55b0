import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('devices').description('(not yet built)').action(() => {
    throw new Error('devices is not built yet');
  });
}
