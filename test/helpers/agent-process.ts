/** A real `patchwire agent` process for tests that watch what it says (push tests). */
import type { TestContext } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN } from './cli.js';
import { waitFor } from './wait-for.js';

export interface AgentProcess {
  proc: ChildProcess;
  output: () => string;
  /** Waits until the agent's output holds `re` `n` times. */
  said(re: RegExp, what: string, n?: number, timeout?: number): Promise<void>;
}

/** `patchwire agent --dir D` as a real process, SIGKILLed when the test ends. */
export function startAgent(t: TestContext, dir: string, ...flags: string[]): AgentProcess {
  const proc = spawn(process.execPath, [BIN, 'agent', '--dir', dir, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  t.after(() => new Promise<void>((res) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return res();
    proc.once('exit', () => res());
    proc.kill('SIGKILL');
  }));
  return {
    proc,
    output: () => out,
    said: async (re, what, n = 1, timeout = 20_000) => {
      const g = new RegExp(re.source, 'g');
      await waitFor(() => (out.match(g)?.length ?? 0) >= n, { what, timeout, detail: () => `agent output:\n${out}` });
    },
  };
}
