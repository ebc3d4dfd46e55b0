import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('schedule').description('(not yet built)').action(() => {
    throw new Error('schedule is not built yet');
  });
}
