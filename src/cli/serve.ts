import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('serve').description('(not yet built)').action(() => {
    throw new Error('serve is not built yet');
  });
}
