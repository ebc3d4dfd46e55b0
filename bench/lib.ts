/**
 * Shared helpers of the benchmarks: temp folders, child processes (always cleaned up), the CLI,
 * a patchwire server, wrk runs and small statistics. Everything talks to 127.0.0.1 only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { Sighting, Store } from '../src/store/store.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = join(REPO, 'bin', 'patchwire.js');
export const TOKEN = 'bench-admin-token';

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Stops one child we started: SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) {
    children.delete(child);
    return child.exitCode;
  }
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const code = await exited;
  clearTimeout(timer);
  children.delete(child);
  return code;
}

const cleanups: Array<() => Promise<unknown>> = [];

/** Something cleanup() does after the children are stopped (e.g. drop a database the bench made). */
export function onCleanup(fn: () => Promise<unknown>): void {
  cleanups.push(fn);
}

/** Kills every child still running (by its own pid), runs the onCleanup hooks and removes the temp folders. */
export async function cleanup(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c, 2000).catch(() => null)));
  for (const fn of cleanups.splice(0)) await fn().catch((err: unknown) => process.stderr.write(`bench cleanup: ${(err as Error).message}\n`));
  for (const d of tempDirs) await rm(d, { recursive: true, force: true }).catch(() => {});
  tempDirs.clear();
}

/** Runs `body` and always cleans up, also on Ctrl-C / SIGTERM; sets the exit code. */
export function runMain(body: () => Promise<void>): void {
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`\nbench: ${sig}, cleaning up\n`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  body()
    .catch((err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exitCode = 1;
    })
    .finally(() => cleanup());
}

/** Like runMain, and prints the load average at the end and how long the bench took. */
export function runBench(main: () => Promise<void>): void {
  runMain(async () => {
    const t0 = performance.now();
    try {
      await main();
    } finally {
      await cleanup();
      process.stdout.write(`load average at the end ${loadAverage()}; bench finished in ${((performance.now() - t0) / 1000).toFixed(1)} s (processes stopped, temp folder removed)\n`);
    }
  });
}

export const loadAverage = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

/** The value after `--name` on the command line, or undefined. */
export function argValue(name: string, argv: string[] = process.argv.slice(2)): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** Device i (1-based) -> aa:bb:cc:xx:xx:xx (up to 16 M devices); LUA_DEVICE_ID is the same formula for wrk scripts. */
export function benchDeviceId(i: number): string {
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return `aa:bb:cc:${h((i >> 16) & 255)}:${h((i >> 8) & 255)}:${h(i & 255)}`;
}
export const LUA_DEVICE_ID = 'string.format("aa:bb:cc:%02x:%02x:%02x", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)';

/** Starts a long-running child and remembers it for cleanup. */
export function startChild(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Waits until the child's stdout matches `re`; rejects if it exits first or after `timeoutMs`. */
export function waitForOutput(child: ChildProcess, re: RegExp, timeoutMs = 15000): Promise<RegExpMatchArray> {
  return new Promise((res, rej) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${re} (stdout: ${out.slice(-500)} stderr: ${err.slice(-500)})`)), timeoutMs);
    const onOut = (b: Buffer) => {
      out += b.toString();
      const m = out.match(re);
      if (m) done(undefined, m);
    };
    const onErr = (b: Buffer) => { err += b.toString(); };
    const onExit = (code: number | null) => done(new Error(`process exited (${code}) before printing ${re}; stderr: ${err.slice(-1000)}`));
    function done(e?: Error, m?: RegExpMatchArray) {
      clearTimeout(timer);
      child.stdout!.off('data', onOut);
      child.stderr!.off('data', onErr);
      child.off('exit', onExit);
      if (e) rej(e);
      else res(m!);
    }
    child.stdout!.on('data', onOut);
    child.stderr!.on('data', onErr);
    child.once('exit', onExit);
  });
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion; `ms` is the wall time from spawn to exit. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.once('error', rej);
    child.once('close', (code) => {
      children.delete(child);
      res({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** Runs the patchwire CLI (optionally pinned with taskset); throws on a non-zero exit. */
export async function cli(args: string[], opts: { cpu?: number; cli?: string } = {}): Promise<RunResult> {
  const bin = opts.cli ?? CLI;
  const r = opts.cpu === undefined
    ? await run(process.execPath, [bin, ...args], { PATCHWIRE_TOKEN: TOKEN })
    : await run('taskset', ['-c', String(opts.cpu), process.execPath, bin, ...args], { PATCHWIRE_TOKEN: TOKEN });
  if (r.code !== 0) throw new Error(`patchwire ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r;
}

export interface Server {
  child: ChildProcess;
  url: string;
}

/** `patchwire serve` pinned to `cpu` (taskset execs node, so the child pid is node's). */
export async function startPatchwire(
  dataDir: string, opts: { cpu?: number; nodeArgs?: string[]; cli?: string; args?: string[]; timeoutMs?: number } = {},
): Promise<Server> {
  const args = [...(opts.nodeArgs ?? []), opts.cli ?? CLI, 'serve', '--data', dataDir, '--host', '127.0.0.1', '--port', '0', '--log-level', 'warn', ...(opts.args ?? [])];
  const child = opts.cpu === undefined
    ? startChild(process.execPath, args, { PATCHWIRE_TOKEN: TOKEN })
    : startChild('taskset', ['-c', String(opts.cpu), process.execPath, ...args], { PATCHWIRE_TOKEN: TOKEN });
  const m = await waitForOutput(child, /patchwire: listening on (http:\/\/127\.0\.0\.1:\d+)/, opts.timeoutMs);
  return { child, url: m[1]! };
}

/** Creates product `acme` and publishes 1.0.0 (a small folder) on a running server. */
export async function publishAcme(dir: string, url: string, bin?: string): Promise<{ key: string; root: string }> {
  const key = join(dir, 'publisher.key');
  const root = join(dir, 'acme.root.json');
  const tree = join(dir, 'release-1.0.0');
  const { mkdir, writeFile } = await import('node:fs/promises');
  await mkdir(join(tree, 'lib'), { recursive: true });
  await writeFile(join(tree, 'app.js'), `console.log('acme 1.0.0');\n${'// padding\n'.repeat(2000)}`);
  await writeFile(join(tree, 'lib', 'data.bin'), Buffer.alloc(64 * 1024, 7));
  await cli(['keygen', '--out', key], { cli: bin });
  await cli(['product', 'create', '--server', url, '--token', TOKEN, '--product', 'acme', '--key', key, '--root-out', root], { cli: bin });
  await cli(['publish', '--server', url, '--token', TOKEN, '--product', 'acme', '--version', '1.0.0', '--key', key, tree], { cli: bin });
  return { key, root };
}

export interface WrkResult {
  requests: number;
  durationUs: number;
  reqPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  raw: string;
}

/** Lua `done` hook shared by every wrk script: one machine-readable line with the numbers. */
export const WRK_DONE_LUA = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`;

export interface WrkSettings {
  threads: number;
  connections: number;
  seconds: number;
  /** taskset's CPU list: one CPU (1) or several ('0,1'). */
  cpu: number | string;
}

/** Every answer that was not a success: non-2xx/3xx plus connect, read, write and timeout errors. */
export const wrkErrors = (r: WrkResult): number => r.errors.status + r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout;

/** One wrk load: its script against `url`, the server process `pid` whose CPU time it costs. */
export interface Load { url: string; script: string; pid: number; wrk: WrkSettings }

/**
 * A warm-up of `warmupSeconds`, then the measured run; several loads run at the same time (one
 * wrk each). `beforeMeasured` runs between the two (e.g. to start a server-side window).
 * `cpuSeconds[i]`: what loads[i]'s server used during the measured run.
 */
export async function measureLoads(loads: Load[], warmupSeconds: number, beforeMeasured?: () => Promise<unknown>): Promise<{ runs: WrkResult[]; cpuSeconds: number[]; mainThreadCpuSeconds: number[] }> {
  await Promise.all(loads.map((l) => runWrk(l.url, l.script, { ...l.wrk, seconds: warmupSeconds })));
  await beforeMeasured?.();
  const c0 = await Promise.all(loads.map((l) => cpuSeconds(l.pid)));
  const m0 = await Promise.all(loads.map((l) => mainThreadCpuSeconds(l.pid)));
  const runs = await Promise.all(loads.map((l) => runWrk(l.url, l.script, l.wrk)));
  const c1 = await Promise.all(loads.map((l) => cpuSeconds(l.pid)));
  const m1 = await Promise.all(loads.map((l) => mainThreadCpuSeconds(l.pid)));
  return { runs, cpuSeconds: c1.map((c, i) => c - c0[i]!), mainThreadCpuSeconds: m1.map((c, i) => c - m0[i]!) };
}

/** Runs wrk pinned to `cpu` with a Lua script; `status` counts non-2xx/3xx answers. */
export async function runWrk(url: string, script: string, s: WrkSettings): Promise<WrkResult> {
  const r = await run('taskset', ['-c', String(s.cpu), 'wrk', `-t${s.threads}`, `-c${s.connections}`, `-d${s.seconds}s`, '--latency', '-s', script, url]);
  if (r.code !== 0) throw new Error(`wrk exited ${r.code}: ${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (!line) throw new Error(`wrk printed no BENCH_JSON line:\n${r.stdout}\n${r.stderr}`);
  const j = JSON.parse(line.slice('BENCH_JSON '.length)) as Record<string, number>;
  return {
    requests: j.requests!,
    durationUs: j.duration_us!,
    reqPerSec: j.requests! / (j.duration_us! / 1e6),
    p50Ms: j.p50! / 1000,
    p90Ms: j.p90! / 1000,
    p99Ms: j.p99! / 1000,
    maxMs: j.max! / 1000,
    errors: { connect: j.connect!, read: j.read!, write: j.write!, status: j.status!, timeout: j.timeout! },
    raw: r.stdout,
  };
}

/** utime + stime of a process in seconds (/proc/PID/stat fields 14 and 15, USER_HZ = 100). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * utime + stime of a process's main thread (the event loop: its thread id is the pid), without
 * its worker threads, libuv's pool and V8's helper threads.
 */
export async function mainThreadCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[idx]!;
}

/** Prints rows as an aligned plain-text table (the README pastes it verbatim). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export async function packageVersion(name: string): Promise<string> {
  const pkg = JSON.parse(await readFile(join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export const ms = (n: number, digits = 2): string => `${n.toFixed(digits)} ms`;

/**
 * Writes devices 1..n of acme/stable straight into a store: sightings 10,000 per batch, then, with
 * `appliedEvery`, an `applied 1.0.0` report for every such device.
 */
export async function writeBenchDevices(store: Pick<Store, 'recordSightings' | 'recordReport'>, n: number, o: { appliedEvery?: number; source?: string } = {}): Promise<void> {
  const seenAt = new Date();
  const source = o.source ?? 'http://127.0.0.1';
  for (let start = 1; start <= n; start += 10_000) {
    const batch: Sighting[] = [];
    for (let i = start; i < start + 10_000 && i <= n; i++) batch.push({ deviceId: benchDeviceId(i), product: 'acme', channel: 'stable', seenAt, source });
    await store.recordSightings(batch);
  }
  if (!o.appliedEvery) return;
  for (let i = o.appliedEvery; i <= n; i += o.appliedEvery) {
    await store.recordReport({ deviceId: benchDeviceId(i), product: 'acme', channel: 'stable', event: 'applied', version: '1.0.0', previousVersion: null, detail: null, at: seenAt, source });
  }
}
