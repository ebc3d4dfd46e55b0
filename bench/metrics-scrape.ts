/**
 * What a Prometheus scrape of GET /metrics costs on a 100,000-device fleet (issue 11).
 *
 *   node --import tsx bench/metrics-scrape.ts [--devices 100000] [--scrapes 20]
 *
 * 1. A data folder with product `acme` and release 1.0.0 made through a server, then N devices
 *    written straight into `<data>/patchwire.db` with SqliteStore (sightings, 10,000 per batch) and
 *    an `applied 1.0.0` report for every 4th device.
 * 2. `patchwire serve` (CPU 0); this process (CPU 1) scrapes /metrics: once cold (the fleet figures
 *    read from the store: one grouped count of the devices, the mirrors, the identity conflicts),
 *    then `--scrapes` times back to back within the 5 s cache window, then once more after the
 *    window. Reported: wall time per scrape, and the server's CPU time over the cached scrapes.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { CLI, TOKEN, cpuSeconds, writeBenchDevices, makeTempDir, percentile, publishAcme, runMain, startChild, stopChild, table, waitForOutput } from './lib.js';

const argv = process.argv.slice(2);
const arg = (name: string, d: string): string => (argv.includes(name) ? argv[argv.indexOf(name) + 1]! : d);
const DEVICES = Number(arg('--devices', '100000'));
const SCRAPES = Number(arg('--scrapes', '20'));

async function fill(dbFile: string): Promise<void> {
  const store = await SqliteStore.open(dbFile);
  try {
    await writeBenchDevices(store, DEVICES, { appliedEvery: 4 });
  } finally {
    await store.close();
  }
}

async function scrape(url: string): Promise<{ ms: number; text: string }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/metrics`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}: ${text}`);
  return { ms: performance.now() - t0, text };
}

runMain(async () => {
  const root = await makeTempDir('patchwire-bench-metrics-');
  const dataDir = join(root, 'data');
  const serve = async () => {
    const child = startChild('taskset', ['-c', '0', process.execPath, CLI, 'serve', '--data', dataDir, '--host', '127.0.0.1', '--port', '0', '--log-level', 'warn'], { PATCHWIRE_TOKEN: TOKEN });
    const m = await waitForOutput(child, /patchwire: listening on (http:\/\/127\.0\.0\.1:\d+)/);
    return { child, url: m[1]! };
  };
  const first = await serve();
  await publishAcme(root, first.url);
  await stopChild(first.child);
  const t0 = performance.now();
  await fill(join(dataDir, 'patchwire.db'));
  process.stdout.write(`${DEVICES} devices written in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

  const s = await serve();
  try {
    const cold = await scrape(s.url);
    const line = cold.text.split('\n').filter((l) => l.startsWith('patchwire_devices{')).join('; ');
    const cpu0 = await cpuSeconds(s.child.pid!);
    const cached: number[] = [];
    for (let i = 0; i < SCRAPES; i++) cached.push((await scrape(s.url)).ms);
    const cpu = (await cpuSeconds(s.child.pid!)) - cpu0;
    await sleep(5100);
    const again = await scrape(s.url);
    const rows = [
      ['cold (store read)', '1', `${cold.ms.toFixed(1)} ms`, '-'],
      ['within the 5 s cache', String(SCRAPES), `p50 ${percentile(cached, 50).toFixed(1)} ms, max ${Math.max(...cached).toFixed(1)} ms`, `${((cpu * 1000) / SCRAPES).toFixed(1)} ms`],
      ['after the window (store read)', '1', `${again.ms.toFixed(1)} ms`, '-'],
    ];
    process.stdout.write(`${line}\n${table(['scrape', 'scrapes', 'wall time', 'server CPU per scrape'], rows)}\n`);
  } finally {
    await stopChild(s.child);
  }
});
