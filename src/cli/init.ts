import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('init').description('(not yet built)').action(() => {
    throw new Error('init is not built yet');
  });
}
