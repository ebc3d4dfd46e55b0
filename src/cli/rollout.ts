import type { Command } from 'commander';
import { CliError } from './cli-error.js';
import { adminRequest, adminTarget, checkName, printJson, printTable, withAdminOptions } from './admin-client.js';
import { DEFAULT_CHANNEL } from '../protocol/names.js';
import { formatDuration } from '../protocol/duration.js';
import { ROLLOUT_ACTIONS } from '../protocol/rollout.js';
import type { RolloutView } from '../protocol/wire.js';

interface Opts { server?: string; token?: string; product: string; channel?: string; json?: boolean }

const ACTIONS = ['status', ...ROLLOUT_ACTIONS] as const;

export function register(program: Command): void {
  withAdminOptions(program
    .command('rollout')
    .description('show or steer the staged rollout of a channel\'s latest release (`publish --rollout`)'))
    .argument('<action>', `one of ${ACTIONS.join(', ')}: status shows it; pause stops new phases; resume goes on (the next phase waits --every from now); advance opens the next phase now; abort stops offering the release (devices that applied it keep it)`)
    .requiredOption('--product <name>', 'product name')
    .option('--channel <name>', `release channel (status: every channel; the others: ${DEFAULT_CHANNEL})`)
    .option('--json', 'print the rollout(s) as JSON')
    .action(async (action: string, o: Opts) => {
      if (!(ACTIONS as readonly string[]).includes(action)) throw new CliError(`unknown action '${action}': use one of ${ACTIONS.join(', ')}`);
      const target = adminTarget(o);
      checkName('--product', o.product);
      checkName('--channel', o.channel);
      const product = encodeURIComponent(o.product);
      if (action === 'status') {
        const q = o.channel ? `&channel=${encodeURIComponent(o.channel)}` : '';
        const { rollouts } = await adminRequest<{ rollouts: RolloutView[] }>(target, 'GET', `/rollouts?product=${product}${q}`);
        if (o.json) return printJson({ rollouts });
        if (rollouts.length === 0) {
          process.stdout.write(`${o.product}${o.channel ? `/${o.channel}` : ''}: no staged rollout (the latest releases went to every device)\n`);
          return;
        }
        printTable([
          ['CHANNEL', 'VERSION', 'STATE', 'PHASE', 'PERCENT', 'NEXT PHASE', 'OFFERED', 'ATTEMPTED', 'APPLIED', 'FAILED', 'ROLLED BACK'],
          ...rollouts.map((r) => [
            r.channel, r.version, r.state, `${r.phase + 1}/${r.phases.length} (${r.phases.join('%,')}%)`, `${r.percent}%`,
            r.nextPhaseAt ?? (r.every === null ? 'on advance' : '-'),
            String(r.counts.offered), String(r.counts.attempted), String(r.counts.applied), String(r.counts.failed), String(r.counts.rolledBack),
          ]),
        ]);
        return;
      }
      const channel = o.channel ?? DEFAULT_CHANNEL;
      const { rollout: r } = await adminRequest<{ rollout: RolloutView }>(target, 'POST', `/products/${product}/rollout/${action}`, { channel });
      if (o.json) return printJson({ rollout: r });
      const every = r.every === null ? 'advances on `rollout advance`' : `every ${formatDuration(r.every)}`;
      process.stdout.write(`${r.product}/${r.channel} ${r.version}: ${r.state}, phase ${r.phase + 1} of ${r.phases.length} at ${r.percent}% (${every}${r.nextPhaseAt ? `, next at ${r.nextPhaseAt}` : ''})\n`);
    });
}
