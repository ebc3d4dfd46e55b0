import { spawn } from 'node:child_process';

export interface HealthResult {
  ok: boolean;
  /** What happened, for the `rolled-back` report: exit code or timeout, and the output's tail. */
  detail: string;
}

const OUTPUT_TAIL = 600;

/**
 * Runs the health command through the shell with cwd `cwd` (INSTALL_DIR/current) and env
 * PATCHWIRE_VERSION. Exit 0 within `timeoutMs` is healthy; a non-zero exit, a signal, a spawn
 * error or the timeout is not (on timeout the command's whole process group is killed).
 */
export function runHealthCheck(cmd: string, opts: { cwd: string; version: string; timeoutMs: number }): Promise<HealthResult> {
  return new Promise((resolve) => {
    let output = '';
    const keep = (d: Buffer) => {
      output = (output + d.toString('utf8')).slice(-OUTPUT_TAIL);
    };
    const child = spawn(cmd, {
      shell: true,
      cwd: opts.cwd,
      env: { ...process.env, PATCHWIRE_VERSION: opts.version },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so a timeout also stops what the command started.
      detached: process.platform !== 'win32',
    });
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined && process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, opts.timeoutMs);
    const tail = () => (output.trim() ? `; output: ${output.trim()}` : '');
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: `health command ${JSON.stringify(cmd)} could not run (${err.message})` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) resolve({ ok: false, detail: `health command ${JSON.stringify(cmd)} timed out after ${opts.timeoutMs / 1000} s${tail()}` });
      else if (code === 0) resolve({ ok: true, detail: 'healthy' });
      else resolve({ ok: false, detail: `health command ${JSON.stringify(cmd)} ${code !== null ? `exited ${code}` : `was killed by ${signal}`}${tail()}` });
    });
  });
}
