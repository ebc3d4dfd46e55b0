import type { Command } from 'commander';
import { adminRequest, adminTarget, printJson, withAdminOptions } from './admin-client.js';
import { CliError } from './cli-error.js';
import type { ReconcileView } from '../protocol/wire.js';

export function register(program: Command): void {
  withAdminOptions(program
    .command('reconcile')
    .description("consolidate now: pull every mirror's device records, merge them, push the merged records and the schedules back"), 'the primary patchwire server URL (required)')
    .option('--json', 'print one JSON document')
    .action(async (o: { server?: string; token?: string; json?: boolean }) => {
      const r = await adminRequest<ReconcileView>(adminTarget(o), 'POST', '/reconcile');
      if (o.json) printJson(r);
      else if (r.mirrors.length === 0 && !r.pending?.length) process.stdout.write('no mirrors have announced themselves to this server\n');
      else {
        for (const m of r.mirrors) {
          const skipped = m.skipped ? `; skipped ${m.skipped} invalid records: ${m.skippedWhy}` : '';
          process.stdout.write(`${m.url}: ${m.error ? `FAILED: ${m.error}` : `pulled ${m.pulled}, pushed ${m.pushed}`}${skipped}\n`);
        }
        for (const url of r.pending ?? []) process.stdout.write(`${url}: pending, not contacted (\`patchwire mirrors approve ${url}\`)\n`);
      }
      // A failed mirror is reported (exit 1) after the others were consolidated; the next run retries.
      if (r.mirrors.some((m) => m.error)) throw new CliError('', 1);
    });
}
