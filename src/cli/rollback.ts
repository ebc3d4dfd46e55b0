import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('rollback').description('(not yet built)').action(() => {
    throw new Error('rollback is not built yet');
  });
}
