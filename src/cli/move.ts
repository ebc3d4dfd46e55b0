import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('move').description('(not yet built)').action(() => {
    throw new Error('move is not built yet');
  });
}
