import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('publish').description('(not yet built)').action(() => {
    throw new Error('publish is not built yet');
  });
}
