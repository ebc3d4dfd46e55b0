import type { Command } from 'commander';

export function register(program: Command): void {
  program.command('product').description('(not yet built)').action(() => {
    throw new Error('product is not built yet');
  });
}
