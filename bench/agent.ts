/**
 * Agent costs on this machine, against a local server with one release (acme 1.0.0, ~86 KB tree).
 *
 *   node --import tsx bench/agent.ts [--runs N] [--baseline DIR]
 *
 * Server pinned to CPU 0, every agent process (and this script's in-process checks) on CPU 1.
 * (a) wall time of `patchwire check --dir D --force --json` as a process, up to date (N=20),
 *     alternating with `node -e 0` (and with the baseline's check): the ratio to bare Node's start
 *     is the issue 13 target (at most 2x);
 * (b) runCheck({dir, force:true}) in-process (N=50, after 3 warm-up calls): the network and
 *     verification work alone (load state, POST /v1/check, parse and check the answer, save
 *     state); plus, for reference, in-process checks that install 1.0.0 into a fresh folder
 *     (TUF metadata refresh and verification, download, sha256, extract, tree-hash check, switch);
 * (c) process start-up: `node bin/patchwire.js --help` and `node -e 0`;
 * (d) VmRSS and VmHWM (/proc/PID/status) of `patchwire agent --dir D` 5 s after start, after its
 *     first check (an up-to-date check: the state's next-check time is set to the past first).
 * --baseline DIR: another built checkout (e.g. main, `git archive` + `npm run build` in /tmp) gets a
 * device folder of its own on the same server; its check runs in turn with this one's in (a), and
 * its idle agent is measured in (d).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { agentPaths, initAgent, loadState, runCheck, saveState } from '../src/agent/index.js';
import {
  argValue, CLI, cli, loadAverage, makeTempDir, percentile, publishAcme, run, runBench, startChild, startPatchwire, stopChild, table,
  waitForOutput,
} from './lib.js';

const SERVER_CPU = 0;
const AGENT_CPU = 1;
const argv = process.argv.slice(2);
const runsArg = argv.indexOf('--runs');
const N_PROCESS = runsArg >= 0 ? Number(argv[runsArg + 1]) : 20;
const N_INPROC = 50;
const N_INSTALL = 10;
const N_STARTUP = 20;
const BASELINE = argValue('--baseline');
const BASE_CLI = BASELINE ? join(BASELINE, 'bin', 'patchwire.js') : undefined;

const stats = (xs: number[]) => ({ median: percentile(xs, 50), p90: percentile(xs, 90) });
const f1 = (n: number) => `${n.toFixed(1)} ms`;

async function vm(pid: number): Promise<{ rss: number; hwm: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

async function measureIdleAgent(dir: string, bin = CLI): Promise<{ rss: number; hwm: number; firstLine: string }> {
  const paths = agentPaths(dir);
  const state = await loadState(paths.state);
  await saveState(paths.state, { ...state, nextCheckAt: new Date(Date.now() - 1000).toISOString() });
  const t0 = performance.now();
  const agent = startChild('taskset', ['-c', String(AGENT_CPU), process.execPath, bin, 'agent', '--dir', dir]);
  const m = await waitForOutput(agent, /\n(.*(?:up to date|updated|check failed).*)\n/, 10000);
  if (/check failed/.test(m[1]!)) throw new Error(`the agent's first check failed: ${m[1]}`);
  const left = 5000 - (performance.now() - t0);
  if (left > 0) await new Promise((r) => setTimeout(r, left));
  const mem = await vm(agent.pid!);
  await stopChild(agent);
  return { ...mem, firstLine: m[1]! };
}

/** RSS of a reference node process 5 s after start (it prints `ready` when its work is done). */
async function measureIdleReference(code: string): Promise<{ rss: number; hwm: number }> {
  const t0 = performance.now();
  const child = startChild('taskset', ['-c', String(AGENT_CPU), process.execPath, '--input-type=module', '-e', code]);
  await waitForOutput(child, /ready/, 10000);
  const left = 5000 - (performance.now() - t0);
  if (left > 0) await new Promise((r) => setTimeout(r, left));
  const mem = await vm(child.pid!);
  await stopChild(child);
  return mem;
}

async function main(): Promise<void> {
  const tmp = await makeTempDir('patchwire-bench-agent-');
  process.stdout.write(`patchwire agent bench: node ${process.version}, server on CPU ${SERVER_CPU}, agent on CPU ${AGENT_CPU}, load average ${loadAverage()}, temp ${tmp}${BASELINE ? `, baseline ${BASELINE}` : ''}\n`);
  const server = await startPatchwire(join(tmp, 'data'), { cpu: SERVER_CPU });
  const { root } = await publishAcme(tmp, server.url);

  // One device folder, brought to 1.0.0 by a first (updating) check.
  const dev = join(tmp, 'device');
  await cli(['init', '--dir', dev, '--server', server.url, '--product', 'acme', '--root', root, '--device-id', 'aa:bb:cc:00:00:09']);
  const first = JSON.parse((await cli(['check', '--dir', dev, '--json'])).stdout) as { result: string; version: string };
  if (first.result !== 'updated' || first.version !== '1.0.0') throw new Error(`first check: ${JSON.stringify(first)}`);

  // The baseline's own device folder, brought to 1.0.0 by its own first check.
  const baseDev = join(tmp, 'device-baseline');
  if (BASE_CLI) {
    await cli(['init', '--dir', baseDev, '--server', server.url, '--product', 'acme', '--root', root, '--device-id', 'aa:bb:cc:00:00:0a'], { cli: BASE_CLI });
    const b = JSON.parse((await cli(['check', '--dir', baseDev, '--json'], { cli: BASE_CLI })).stdout) as { result: string; version: string };
    if (b.result !== 'updated' || b.version !== '1.0.0') throw new Error(`baseline first check: ${JSON.stringify(b)}`);
  }

  // (a) up-to-date `patchwire check --force` as a process, in turn with `node -e 0` (and the baseline).
  const procMs: number[] = [];
  const baseMs: number[] = [];
  const bareMs: number[] = [];
  const upToDate = async (bin: string, dir: string, i: number): Promise<number> => {
    const r = await cli(['check', '--dir', dir, '--force', '--json'], { cpu: AGENT_CPU, cli: bin });
    const out = JSON.parse(r.stdout) as { result: string };
    if (out.result !== 'up-to-date') throw new Error(`check ${i} (${bin}): ${r.stdout}`);
    return r.ms;
  };
  for (let i = 0; i < N_PROCESS; i++) {
    procMs.push(await upToDate(CLI, dev, i));
    bareMs.push((await run('taskset', ['-c', String(AGENT_CPU), process.execPath, '-e', '0'])).ms);
    if (BASE_CLI) baseMs.push(await upToDate(BASE_CLI, baseDev, i));
  }

  // (b) runCheck in-process; this script runs on CPU 1 from here on.
  await run('taskset', ['-p', '-c', String(AGENT_CPU), String(process.pid)]);
  const coldT0 = performance.now();
  await runCheck({ dir: dev, force: true });
  const coldMs = performance.now() - coldT0;
  await runCheck({ dir: dev, force: true });
  await runCheck({ dir: dev, force: true });
  const inMs: number[] = [];
  for (let i = 0; i < N_INPROC; i++) {
    const t0 = performance.now();
    const r = await runCheck({ dir: dev, force: true });
    inMs.push(performance.now() - t0);
    if (r.result !== 'up-to-date') throw new Error(`runCheck ${i}: ${JSON.stringify(r)}`);
  }
  // Reference: in-process checks that install 1.0.0 into fresh folders (the full verify path).
  const installMs: number[] = [];
  for (let i = 0; i < N_INSTALL; i++) {
    const d = join(tmp, `fresh-${i}`);
    await initAgent({ dir: d, server: server.url, product: 'acme', rootFile: root, deviceId: `aa:bb:cc:00:01:${(i + 16).toString(16)}` });
    const t0 = performance.now();
    const r = await runCheck({ dir: d, force: true });
    installMs.push(performance.now() - t0);
    if (r.result !== 'updated') throw new Error(`install ${i}: ${JSON.stringify(r)}`);
  }

  // (c) start-up alone.
  const helpMs: number[] = [];
  const nodeMs: number[] = [];
  for (let i = 0; i < N_STARTUP; i++) {
    const h = await run('taskset', ['-c', String(AGENT_CPU), process.execPath, CLI, '--help']);
    if (h.code !== 0) throw new Error(`--help exited ${h.code}`);
    helpMs.push(h.ms);
    nodeMs.push((await run('taskset', ['-c', String(AGENT_CPU), process.execPath, '-e', '0'])).ms);
  }
  // The taskset wrapper itself (fork/exec of a tiny binary), to subtract mentally.
  const tasksetMs: number[] = [];
  for (let i = 0; i < N_STARTUP; i++) tasksetMs.push((await run('taskset', ['-c', String(AGENT_CPU), 'true'])).ms);

  // (d) idle agent memory (run twice, reported separately).
  const idle = await measureIdleAgent(dev);
  const idleBase = BASE_CLI ? await measureIdleAgent(baseDev, BASE_CLI) : undefined;
  const idleNode = await measureIdleReference(`console.log('ready'); setInterval(() => {}, 1e6);`);
  const idleFetch = await measureIdleReference(
    `await fetch(${JSON.stringify(`${server.url}/healthz`)}).then((r) => r.text()); console.log('ready'); setInterval(() => {}, 1e6);`);
  const idleLib = await measureIdleReference(
    `const a = await import(${JSON.stringify(join(CLI, '..', '..', 'dist', 'src', 'agent', 'index.js'))});`
    + ` await a.runCheck({ dir: ${JSON.stringify(dev)}, force: true }); console.log('ready'); setInterval(() => {}, 1e6);`);

  await stopChild(server.child);

  const a = stats(procMs);
  const bare = stats(bareMs);
  const base = BASE_CLI ? stats(baseMs) : undefined;
  const ratio = a.median / bare.median;
  const b = stats(inMs);
  const inst = stats(installMs);
  const help = stats(helpMs);
  const nd = stats(nodeMs);
  const ts = stats(tasksetMs);
  const pf = (ok: boolean) => (ok ? 'PASS' : 'FAIL');
  process.stdout.write(`\n${table(['measurement', 'N', 'median', 'p90', 'target', 'result'], [
    ['(a) `patchwire check --force` process, up to date (wall)', String(N_PROCESS), f1(a.median), f1(a.p90), '-', 'info'],
    ['    `node -e 0`, in turn with (a)', String(N_PROCESS), f1(bare.median), f1(bare.p90), '-', 'info'],
    ['    (a) / `node -e 0`, medians', '-', `${ratio.toFixed(2)}x`, '-', '<= 2x', pf(ratio <= 2)],
    ...(base ? [
      ['    baseline: `patchwire check --force` process, in turn with (a)', String(N_PROCESS), f1(base.median), f1(base.p90), '-', 'info'],
      ['    baseline / `node -e 0`, medians', '-', `${(base.median / bare.median).toFixed(2)}x`, '-', '-', 'info'],
    ] : []),
    ['(b) runCheck in-process, up to date (network + verification)', String(N_INPROC), f1(b.median), f1(b.p90), '< 50 ms', pf(b.p90 < 50)],
    ['    runCheck in-process, first call in the process (cold)', '1', f1(coldMs), '-', '-', 'info'],
    ['    runCheck in-process, installs 1.0.0 into a fresh folder', String(N_INSTALL), f1(inst.median), f1(inst.p90), '-', 'info'],
    ['(c) `node bin/patchwire.js --help` (start-up)', String(N_STARTUP), f1(help.median), f1(help.p90), '-', 'info'],
    ['    `node -e 0` (bare node start-up)', String(N_STARTUP), f1(nd.median), f1(nd.p90), '-', 'info'],
    ['    `taskset -c 1 true` (wrapper overhead in the rows above)', String(N_STARTUP), f1(ts.median), f1(ts.p90), '-', 'info'],
    ['(d) idle `patchwire agent` VmRSS 5 s after start', '1', `${idle.rss.toFixed(1)} MB`, '-', '<= 45 MB', pf(idle.rss <= 45)],
    ['    idle `patchwire agent` VmHWM (peak RSS)', '1', `${idle.hwm.toFixed(1)} MB`, '-', '-', 'info'],
    ...(idleBase ? [['    baseline: idle `patchwire agent` VmRSS / VmHWM', '1', `${idleBase.rss.toFixed(1)} MB`, `${idleBase.hwm.toFixed(1)} MB`, '-', 'info']] : []),
    ['    reference: idle `node` (nothing loaded) VmRSS / VmHWM', '1', `${idleNode.rss.toFixed(1)} MB`, `${idleNode.hwm.toFixed(1)} MB`, '-', 'info'],
    ['    reference: idle `node` after one fetch() VmRSS / VmHWM', '1', `${idleFetch.rss.toFixed(1)} MB`, `${idleFetch.hwm.toFixed(1)} MB`, '-', 'info'],
    ['    reference: node + agent library, one runCheck, VmRSS / VmHWM', '1', `${idleLib.rss.toFixed(1)} MB`, `${idleLib.hwm.toFixed(1)} MB`, '-', 'info'],
  ])}\n`);
  process.stdout.write(`agent's first check: ${idle.firstLine}\n`);
  process.stdout.write(`(a) minus (c) --help: ${f1(a.median - help.median)} median spent after start-up in the check process\n`);
}

runBench(main);
