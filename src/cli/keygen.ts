import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('keygen').description('(not yet built)').action(() => {
    throw new Error('keygen is not built yet');
  });
}
