import type { Command } from 'commander';
import { adminRequest, adminTarget, printJson, withAdminOptions } from './admin-client.js';

export function register(program: Command): void {
  withAdminOptions(program.command('products').description('list the products of a server'))
    .option('--json', 'print { products: [name...] }')
    .action(async (o: { server?: string; token?: string; json?: boolean }) => {
      const r = await adminRequest<{ products: string[] }>(adminTarget(o), 'GET', '/products');
      if (o.json) return printJson(r);
      if (r.products.length === 0) process.stdout.write('no products yet; create one with `patchwire product create`\n');
      for (const p of r.products) process.stdout.write(`${p}\n`);
    });
}
