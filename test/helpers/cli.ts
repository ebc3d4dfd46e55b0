import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The real CLI entry point (compiled by `npm run build`, which `npm test` runs first). */
export const BIN = join(fileURLToPath(new URL('../..', import.meta.url)), 'bin', 'patchwire.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `patchwire ARGS` as a real process and collects its output. */
export function runCli(args: string[], opts: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, PATCHWIRE_TOKEN: undefined, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Runs the CLI and parses its stdout as JSON, failing loudly with stderr when it did not succeed. */
export async function runJson<T>(args: string[], opts?: Parameters<typeof runCli>[1]): Promise<T> {
  const r = await runCli(args, opts);
  if (r.code !== 0) throw new Error(`patchwire ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  output: () => string;
  /** SIGTERM, then wait for the process to end. */
  stop(): Promise<void>;
  /** SIGKILL (a crash: no clean shutdown), then wait for the process to be gone. */
  kill(): Promise<void>;
}

/** Starts a real `patchwire serve` on 127.0.0.1 with a free port and waits until it listens. */
export function startServer(dataDir: string, opts: { token?: string; args?: string[]; env?: Record<string, string> } = {}): Promise<ServerProcess> {
  const proc = spawn(process.execPath, [BIN, 'serve', '--data', dataDir, '--host', '127.0.0.1', '--port', '0', '--log-level', 'warn', ...(opts.args ?? [])], {
    env: { ...process.env, ...opts.env, PATCHWIRE_TOKEN: opts.token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const end = (signal: NodeJS.Signals) => new Promise<void>((res) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return res();
    proc.once('exit', () => res());
    proc.kill(signal);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`server did not start within 60 s:\n${out}`)); }, 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1]!,
          proc,
          output: () => out,
          stop: () => end('SIGTERM'),
          kill: () => end('SIGKILL'),
        });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}:\n${out}`)); });
  });
}
