import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('agent').description('(not yet built)').action(() => {
    throw new Error('agent is not built yet');
  });
}
