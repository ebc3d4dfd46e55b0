import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('status').description('(not yet built)').action(() => {
    throw new Error('status is not built yet');
  });
}
