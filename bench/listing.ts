/**
 * How long one device listing holds the server, before and after paging (issue 9), in one run.
 *
 *   node --import tsx bench/listing.ts [--devices 100000] [--before-rev 726dfb7]
 *
 * 1. "before": the sources at --before-rev (default: the last commit before paging) are taken with
 *    `git archive` into a temp folder, sharing this checkout's node_modules, and compiled there.
 * 2. One data folder: product `acme` and release 1.0.0 made through a server, then N devices
 *    written straight into `<data>/patchwire.db` with SqliteStore (sightings, 10,000 per batch).
 * 3. For each build (before, then after), on the same data folder: `patchwire serve` (CPU 0), a
 *    probe (this process, CPU 1) that sends GET /healthz over one keep-alive connection back to
 *    back, and that build's own `patchwire devices --json` (CPU 1) listing every device. Reported:
 *    the CLI's wall time, the devices it printed, and the probe's longest and p99 latency while the
 *    CLI ran: the longest time the server answered nobody else.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { CLI, REPO, TOKEN, makeTempDir, writeBenchDevices, percentile, publishAcme, run, runMain, startChild, stopChild, table, waitForOutput } from './lib.js';

const argv = process.argv.slice(2);
const arg = (name: string, d: string): string => (argv.includes(name) ? argv[argv.indexOf(name) + 1]! : d);
const DEVICES = Number(arg('--devices', '100000'));
const BEFORE_REV = arg('--before-rev', '726dfb7');

async function fill(dbFile: string): Promise<void> {
  const store = await SqliteStore.open(dbFile);
  try {
    await writeBenchDevices(store, DEVICES);
  } finally {
    await store.close();
  }
}

async function serve(cli: string, dataDir: string) {
  const child = startChild('taskset', ['-c', '0', process.execPath, cli, 'serve', '--data', dataDir, '--host', '127.0.0.1', '--port', '0', '--log-level', 'warn'], { PATCHWIRE_TOKEN: TOKEN });
  const m = await waitForOutput(child, /patchwire: listening on (http:\/\/127\.0\.0\.1:\d+)/);
  return { child, url: m[1]! };
}

/** GET /healthz back to back until stopped; returns each latency in ms. */
function probe(url: string): { stop: () => Promise<number[]> } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const lat: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      await new Promise<void>((res, rej) => {
        request(`${url}/healthz`, { agent }, (r) => { r.resume(); r.on('end', res); }).on('error', rej).end();
      });
      lat.push(performance.now() - t0);
    }
  })();
  return { stop: async () => { running = false; await loop; agent.destroy(); return lat; } };
}

async function measure(name: string, cli: string, dataDir: string): Promise<string[]> {
  const s = await serve(cli, dataDir);
  try {
    const p = probe(s.url);
    const r = await run('taskset', ['-c', '1', process.execPath, cli, 'devices', '--server', s.url, '--json'], { PATCHWIRE_TOKEN: TOKEN });
    const lat = await p.stop();
    if (r.code !== 0) throw new Error(`${name}: patchwire devices exited ${r.code}: ${r.stderr}`);
    const listed = (JSON.parse(r.stdout) as unknown[]).length;
    return [name, String(listed), `${(r.ms / 1000).toFixed(2)} s`, String(lat.length), `${Math.max(...lat).toFixed(1)} ms`, `${percentile(lat, 99).toFixed(1)} ms`];
  } finally {
    await stopChild(s.child);
  }
}

runMain(async () => {
  const root = await makeTempDir('patchwire-bench-listing-');
  const before = join(root, 'before');
  await mkdir(before);
  execFileSync('sh', ['-c', `git -C "${REPO}" archive ${BEFORE_REV} | tar -x -C "${before}"`]);
  await symlink(join(REPO, 'node_modules'), join(before, 'node_modules'));
  execFileSync(process.execPath, ['scripts/prepare.mjs', '--force'], { cwd: before, stdio: 'inherit' });
  const dataDir = join(root, 'data');
  const first = await serve(CLI, dataDir);
  await publishAcme(root, first.url);
  await stopChild(first.child);
  const t0 = performance.now();
  await fill(join(dataDir, 'patchwire.db'));
  process.stdout.write(`${DEVICES} devices written in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  const rows = [
    await measure(`before (${BEFORE_REV}: one GET of every device)`, join(before, 'bin', 'patchwire.js'), dataDir),
    await measure('after (pages of 1000)', CLI, dataDir),
  ];
  process.stdout.write(`${table(['build', 'devices listed', 'CLI wall time', 'probes', 'longest probe', 'p99 probe'], rows)}\n`);
});
