import type { Command } from 'commander';
import { registerLocalAgentCommand } from './local-agent-command.js';

export function register(program: Command): void {
  registerLocalAgentCommand(
    program,
    'retry',
    'Clear the hold on a version the device rolled back from, so the next check (due at once) tries it again.',
    (agent, dir) => agent.retry({ dir }),
    (r, dir) => `cleared the hold on ${r.cleared}; the next check is due now: run \`patchwire check --dir ${dir}\` to try it (a running \`patchwire agent\` tries it at its next check)`,
  );
}
