import { parseArgs } from 'node:util';
import { runAgentCommand } from './agent.js';

/**
 * `patchwire agent --dir D` without commander or the other commands: the agent waits for hours
 * between checks, and every module it loads stays resident (bench/README.md, idle memory).
 * Returns undefined for any other argument list, which the full CLI then handles (help, errors).
 */
export async function agentFastPath(args: string[]): Promise<number | undefined> {
  let dir: string | undefined;
  let noPush: boolean | undefined;
  try {
    const parsed = parseArgs({ args, options: { dir: { type: 'string' }, 'no-push': { type: 'boolean' } }, strict: true, allowPositionals: false });
    dir = parsed.values.dir;
    noPush = parsed.values['no-push'];
  } catch {
    return undefined;
  }
  if (!dir) return undefined;
  return runAgentCommand(dir, { push: noPush !== true });
}
