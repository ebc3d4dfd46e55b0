import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('check').description('(not yet built)').action(() => {
    throw new Error('check is not built yet');
  });
}
