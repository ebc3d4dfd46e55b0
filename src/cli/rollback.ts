import type { Command } from 'commander';
import { registerLocalAgentCommand } from './local-agent-command.js';

export function register(program: Command): void {
  registerLocalAgentCommand(
    program,
    'rollback',
    'Switch back to the version applied before the last update, and hold back the version left (until `patchwire retry`).',
    (agent, dir) => agent.rollback({ dir }),
    (r, dir) => {
      const report = r.reported ? `reported to ${r.server}` : 'the report to the server is pending and goes out with the next check';
      const hold = r.heldBack ? `; ${r.heldBack} is held back until \`patchwire retry --dir ${dir}\`` : '';
      return `rolled back from ${r.rolledBackFrom ?? '(none)'} to ${r.version}; ${report}${hold}`;
    },
  );
}
