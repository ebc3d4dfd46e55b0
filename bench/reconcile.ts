/**
 * Consolidation bench: how fast a primary and three mirrors converge 100,000 device records.
 *
 * 1. A real primary (`serve --mirror-token`), product `acme`, releases 1.0.0 and 1.1.0 via the CLI;
 *    three real mirrors (`serve --upstream`), each waited for until it has replicated both releases
 *    and the primary's status lists all three.
 * 2. Loading (timed on its own; with `--api-load`, else see below): 25,000 `applied` reports per server through the real device API
 *    (POST /v1/report, node:http keep-alive, 8 in flight per server, 32 in all). 90,000 distinct
 *    devices: 22,500 owned per server, and each server also reports 2,500 devices owned by the
 *    previous server (10,000 devices at two servers, one at 1.0.0 and one at 1.1.0, the higher one
 *    drawn at random), so merging matters.
 * 3. `patchwire reconcile --server P --token admin --json`, three times (first run, second run,
 *    third run), each timed (CLI wall time) with the CPU time of each server process.
 * 4. Verification: `GET /v1/admin/devices` of all four servers: 90,000 devices each, identical
 *    (deviceId, version) sets, the expected version for every device (1.1.0 wherever two servers
 *    disagreed); whole records compared too (informational).
 *
 * Run: node --import tsx bench/reconcile.ts [--devices N] [--api-load] [--cpu-prof DIR] [--cli FILE]   (after `npm run build`)
 *
 * `--api-load` loads through the device API as described in step 2 (the real path; ~5 min per
 * 100,000 on this VM); without it (the default) the four servers are stopped after step 1 and the
 * same records are written with SQL straight into their SQLite files (bulkLoad: an identity, a
 * registry row and an `applied` report per record, what the API would have left), then the servers
 * are restarted on their ports (~1 min for 1,000,000). `--cpu-prof DIR` runs the servers under
 * `node --cpu-prof` (a profile per server process in DIR, summarised with bench/profile-summary.ts;
 * DIR/first-run-window.json is the first reconcile's window for its `--window`).
 * `--cli FILE` runs another build (a baseline checkout's bin/patchwire.js) for the servers and the CLI.
 *
 * `--devices N` (default 100,000; a multiple of 40) scales every count above: N records, N/4 per
 * server, 90% of them owned, so 0.9 N distinct devices and 0.1 N at two servers.
 */
import http from 'node:http';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  CLI, makeTempDir, run, runMain, startChild, stopChild, table, waitForOutput, type Server,
} from './lib.js';
import { generateDeviceKey, signAuthRequest, type DeviceKey } from '../src/agent/device-key.js';
import { keyIdOf } from '../src/protocol/device-auth.js';

const ADMIN = 'admin';
const MIRROR_TOKEN = 'mt';
const SERVERS = 4;
const devicesArg = process.argv.indexOf('--devices');
const RECORDS_ARG = devicesArg >= 0 ? Number(process.argv[devicesArg + 1]) : 100_000;
if (!Number.isSafeInteger(RECORDS_ARG) || RECORDS_ARG < 40 || RECORDS_ARG % 40 !== 0) {
  throw new Error(`--devices ${process.argv[devicesArg + 1]}: give a whole number of records, a multiple of 40 (4 servers, 90% owned)`);
}
/** `--api-load`: load through the device API (POST /v1/auth + /v1/report), the real path; else SQL straight into the stopped servers' files. */
const API_LOAD = process.argv.includes('--api-load');
/** `--cpu-prof DIR`: the servers run under `node --cpu-prof` (profiles written to DIR when they stop). */
const profArg = process.argv.indexOf('--cpu-prof');
const PROF_DIR = profArg >= 0 ? process.argv[profArg + 1] : undefined;
/** `--cli FILE`: another build's bin/patchwire.js (a baseline checkout) for the servers and the CLI. */
const cliArg = process.argv.indexOf('--cli');
const BIN = cliArg >= 0 ? process.argv[cliArg + 1]! : CLI;
const PER_SERVER = RECORDS_ARG / SERVERS; // 25,000 by default
const OWNED = (PER_SERVER * 9) / 10; // per server (22,500); the other 10% of a server's records are devices of the previous server
const GUESTS = PER_SERVER - OWNED;
const DISTINCT = SERVERS * OWNED; // 90,000
const RECORDS = SERVERS * PER_SERVER; // 100,000
const IN_FLIGHT_PER_SERVER = 8;

const env = { PATCHWIRE_TOKEN: ADMIN };

function mac(n: number): string {
  const h = (b: number) => b.toString(16).padStart(2, '0');
  return `02:00:00:${h((n >> 16) & 255)}:${h((n >> 8) & 255)}:${h(n & 255)}`;
}

/** Deterministic PRNG (mulberry32), so every run loads the same fleet. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Job { deviceId: string; version: string }

/** The fleet: per server its 25,000 reports, and the version every device must end at. */
function fleet(): { jobs: Job[][]; expected: Map<string, string>; overlap: Set<string> } {
  const rand = rng(42);
  const jobs: Job[][] = Array.from({ length: SERVERS }, () => []);
  const expected = new Map<string, string>();
  const overlap = new Set<string>();
  for (let s = 0; s < SERVERS; s++) {
    for (let i = 0; i < OWNED; i++) {
      const n = s * OWNED + i + 1;
      const id = mac(n);
      if (i < GUESTS) {
        // Also reported at server s+1, with the other version; either side may hold the higher one.
        const ownerHigh = rand() < 0.5;
        jobs[s]!.push({ deviceId: id, version: ownerHigh ? '1.1.0' : '1.0.0' });
        jobs[(s + 1) % SERVERS]!.push({ deviceId: id, version: ownerHigh ? '1.0.0' : '1.1.0' });
        expected.set(id, '1.1.0');
        overlap.add(id);
      } else {
        const v = n % 2 === 0 ? '1.0.0' : '1.1.0';
        jobs[s]!.push({ deviceId: id, version: v });
        expected.set(id, v);
      }
    }
  }
  // Interleave owned and guest reports so report times of the two copies are mixed.
  for (const list of jobs) list.sort((a, b) => (a.deviceId < b.deviceId ? -1 : 1));
  return { jobs, expected, overlap };
}

async function cliRun(args: string[]) {
  const r = await run(process.execPath, [BIN, ...args], env);
  if (r.code !== 0) throw new Error(`patchwire ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()} ${r.stdout.trim()}`);
  return r;
}

interface StatusMirror { url: string; lastSyncAt: string | null; pulled: number; pushed: number; error: string | null }

/**
 * `patchwire reconcile --json`, timed. Since issue 10's reconcile jobs the CLI starts a job and
 * polls it, so no request outlives the server's silent-socket limit. With an older build (`--cli`)
 * a run longer than that limit (120 s, slow-clients.ts) loses the CLI's connection while the run
 * goes on in the server: then the end
 * is taken from the primary's status (every mirror's lastSyncAt, or its error, changed), polled
 * every 100 ms, and the view is made from it.
 */
async function reconcileRun(url: string): Promise<{ ms: number; stdout: string }> {
  const status = async () => (await getJson<{ mirrors: StatusMirror[] }>(`${url}/v1/admin/status`)).mirrors;
  const before = new Map((await status()).map((m) => [m.url, m.lastSyncAt]));
  const t0 = performance.now();
  const r = await run(process.execPath, [BIN, 'reconcile', '--server', url, '--token', ADMIN, '--json'], env);
  if (r.code === 0) return r;
  if (!/other side closed|socket hang up|ECONNRESET/.test(r.stderr + r.stdout)) throw new Error(`patchwire reconcile exited ${r.code}: ${r.stderr.trim()} ${r.stdout.trim()}`);
  process.stdout.write(`  (the CLI's connection was closed by the server's 120 s silent-socket limit after ${f1((performance.now() - t0) / 1000)} s; waiting for the run to end in the primary's status)\n`);
  for (;;) {
    const ms = await status();
    if (ms.every((m) => m.error || m.lastSyncAt !== before.get(m.url))) {
      return { ms: performance.now() - t0, stdout: JSON.stringify({ mirrors: ms.map((m) => ({ url: m.url, pulled: m.pulled, pushed: m.pushed, ...(m.error ? { error: m.error } : {}) })) }) };
    }
    await new Promise((res) => setTimeout(res, 100));
  }
}

async function startServe(dataDir: string, extra: string[], port = 0): Promise<Server> {
  const prof = PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROF_DIR] : [];
  const child = startChild(process.execPath,
    // Every device of the bench enrols from 127.0.0.1: lift the per-address enrolment limit.
    [...prof, BIN, 'serve', '--data', dataDir, '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warn', '--enrol-limit', '1000000/1m', ...extra], env);
  const m = await waitForOutput(child, /patchwire: listening on (http:\/\/127\.0\.0\.1:\d+)/, 180_000);
  return { child, url: m[1]! };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** One JSON request over the shared keep-alive agent. */
function request(url: string, method: string, body?: unknown, token?: string): Promise<{ status: number; text: string }> {
  return new Promise((res, rej) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = {};
    if (payload !== undefined) { headers['content-type'] = 'application/json'; headers['content-length'] = Buffer.byteLength(payload); }
    if (token) headers.authorization = `Bearer ${token}`;
    const req = http.request(url, { method, agent, headers }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      r.on('error', rej);
    });
    req.on('error', rej);
    req.end(payload);
  });
}

async function getJson<T>(url: string, token = ADMIN): Promise<T> {
  const r = await request(url, 'GET', undefined, token);
  if (r.status !== 200) throw new Error(`GET ${url} answered ${r.status}: ${r.text.slice(0, 300)}`);
  return JSON.parse(r.text) as T;
}

/** Every device of a server, page by page (GET /v1/admin/devices answers pages since issue 9). */
async function allDevices(url: string): Promise<DeviceJson[]> {
  const out: DeviceJson[] = [];
  for (let after: string | null = null; ;) {
    const page: { devices: DeviceJson[]; next: string | null } = await getJson(`${url}/v1/admin/devices?limit=1000${after ? `&after=${after}` : ''}`);
    out.push(...page.devices);
    if (page.next === null) return out;
    after = page.next;
  }
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** utime + stime of a process in seconds (from /proc). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** One key per device, whatever server it talks to (a second key for a MAC is an identity conflict). */
const deviceKeys = new Map<string, DeviceKey>();
const keyOf = (deviceId: string): DeviceKey => {
  let k = deviceKeys.get(deviceId);
  if (!k) deviceKeys.set(deviceId, (k = generateDeviceKey()));
  return k;
};

/** POST /v1/auth for every device of `jobs` at `url` (enrols it): the device token of each. */
async function authServer(url: string, jobs: Job[]): Promise<Map<string, string>> {
  const tokens = new Map<string, string>();
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= jobs.length) return;
      const { deviceId } = jobs[i]!;
      const r = await request(`${url}/v1/auth`, 'POST', signAuthRequest(keyOf(deviceId), { deviceId, product: 'acme', channel: 'stable' }, new Date()));
      if (r.status !== 200) throw new Error(`auth of ${deviceId} at ${url} answered ${r.status}: ${r.text.slice(0, 200)}`);
      tokens.set(deviceId, (JSON.parse(r.text) as { token: string }).token);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT_PER_SERVER }, worker));
  return tokens;
}

async function loadServer(url: string, jobs: Job[], tokens: Map<string, string>): Promise<{ errors: number; firstError?: string }> {
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= jobs.length) return;
      const j = jobs[i]!;
      const r = await request(`${url}/v1/report`, 'POST', {
        deviceId: j.deviceId, product: 'acme', channel: 'stable', event: 'applied', version: j.version, previousVersion: null,
      }, tokens.get(j.deviceId));
      if (r.status !== 200) { errors++; firstError ??= `${r.status} ${r.text.slice(0, 200)}`; }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT_PER_SERVER }, worker));
  return { errors, firstError };
}

/** A device's public key in the SQL loader: 64 hex digits, as a real key has (consolidation carries and hashes it; only /v1/auth verifies it). */
const bulkKeyOf = (deviceId: string): string => createHash('sha256').update(`reconcile-device-${deviceId}`).digest('hex');

/**
 * The SQL loader (default): what `jobs` through the device API would leave in a stopped server's
 * `<data>/patchwire.db`, written in one transaction with the columns of the migrations
 * (src/store/sqlite/migrations.ts): per device an accepted identity (its key, enrolled at the
 * auth time), the registry row (first seen at the auth, last seen and last report at the report,
 * the applied version, this server as source, a change-feed position each, in report order) and
 * the `applied` report. A device has one key at every server, as a real device does.
 */
function bulkLoad(dbFile: string, jobs: Job[], source: string, t0: number): void {
  const db = new Database(dbFile);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF');
    const identity = db.prepare(`INSERT INTO device_identities (device_id, product, channel, public_key, key_id, status, pending_public_key, pending_key_id, pending_at, created_at, updated_at)
      VALUES (?, 'acme', 'stable', ?, ?, 'accepted', NULL, NULL, NULL, ?, ?)`);
    const device = db.prepare(`INSERT INTO devices (device_id, product, channel, version, first_seen_at, last_seen_at, last_report_at, source, updated_at, change_seq)
      VALUES (?, 'acme', 'stable', ?, ?, ?, ?, ?, ?, ?)`);
    const report = db.prepare(`INSERT INTO reports (device_id, product, channel, event, version, previous_version, detail, at, source)
      VALUES (?, 'acme', 'stable', 'applied', ?, NULL, NULL, ?, ?)`);
    const high = (db.prepare('SELECT coalesce(max(change_seq), 0) AS s FROM devices').get() as { s: number }).s;
    db.transaction(() => {
      // Auths first (one a millisecond), then the reports in the same order, as the API loader does.
      const authAt = (i: number) => t0 + i;
      const reportAt = (i: number) => t0 + jobs.length + i;
      for (const [i, j] of jobs.entries()) {
        const pk = bulkKeyOf(j.deviceId);
        identity.run(j.deviceId, pk, keyIdOf(pk), authAt(i), authAt(i));
        device.run(j.deviceId, j.version, authAt(i), reportAt(i), reportAt(i), source, reportAt(i), high + i + 1);
        report.run(j.deviceId, j.version, reportAt(i), source);
      }
    })();
  } finally {
    db.close();
  }
}

interface DeviceJson { deviceId: string; product: string; channel: string; version: string | null; firstSeenAt: string; lastSeenAt: string; lastReportAt: string | null; source: string }
interface ReconcileView { mirrors: Array<{ url: string; pulled: number; pushed: number; error?: string }> }

const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);
const int = (n: number) => Math.round(n).toLocaleString('en-US');

runMain(async () => {
  const tStart = performance.now();
  const nodeVersion = process.version;
  const tmp = await makeTempDir('patchwire-bench-reconcile-');
  process.stdout.write(`patchwire reconcile bench: ${BIN}, node ${nodeVersion}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}, temp ${tmp}\n`);

  // 1. Primary, product, two releases, three mirrors.
  const dirs = ['primary', 'mirror1', 'mirror2', 'mirror3'];
  const args: string[][] = [['--mirror-token', MIRROR_TOKEN, '--reconcile-interval', '1h']];
  const primary = await startServe(join(tmp, dirs[0]!), args[0]!);
  const key = join(tmp, 'publisher.key');
  await cliRun(['keygen', '--out', key]);
  await cliRun(['product', 'create', '--server', primary.url, '--token', ADMIN, '--product', 'acme', '--key', key, '--root-out', join(tmp, 'acme.root.json')]);
  for (const v of ['1.0.0', '1.1.0']) {
    const tree = join(tmp, `release-${v}`);
    await mkdir(join(tree, 'lib'), { recursive: true });
    await writeFile(join(tree, 'app.js'), `console.log('acme ${v}');\n`);
    await writeFile(join(tree, 'lib', 'data.bin'), Buffer.alloc(16 * 1024, 7));
    await cliRun(['publish', '--server', primary.url, '--token', ADMIN, '--product', 'acme', '--version', v, '--key', key, tree]);
  }
  const mirrors: Server[] = [];
  for (let i = 1; i < SERVERS; i++) {
    args.push(['--upstream', primary.url, '--upstream-token', MIRROR_TOKEN, '--sync-interval', '1s']);
    mirrors.push(await startServe(join(tmp, dirs[i]!), args[i]!));
  }
  for (const m of mirrors) {
    await waitFor(`${m.url} to replicate acme`, async () => {
      const p = await getJson<{ releases: unknown[] }>(`${m.url}/v1/admin/products/acme`);
      return p.releases.length === 2;
    });
  }
  await waitFor('the primary to list 3 mirrors', async () =>
    (await getJson<{ mirrors: unknown[] }>(`${primary.url}/v1/admin/status`)).mirrors.length === 3);
  // A mirror is pending (never contacted) until approved.
  for (const m of mirrors) await cliRun(['mirrors', 'approve', m.url, '--server', primary.url, '--token', ADMIN]);
  const servers = [primary, ...mirrors];
  const names = ['primary', 'mirror1', 'mirror2', 'mirror3'];
  process.stdout.write(`primary ${primary.url} (pid ${primary.child.pid}); mirrors ${mirrors.map((m) => `${m.url} (pid ${m.child.pid})`).join(', ')}: replicated 1.0.0 and 1.1.0, announced\n`);

  // 2. Load: through the device API (--api-load), or with SQL into the stopped servers' files.
  const { jobs, expected, overlap } = fleet();
  let loadRow: string[];
  if (API_LOAD) {
    // Devices authenticate first (issue 9: a report needs the device's token), timed on its own.
    const ta0 = performance.now();
    const tokens = await Promise.all(servers.map((s, i) => authServer(s.url, jobs[i]!)));
    process.stdout.write(`authenticated ${int(RECORDS)} device sessions (POST /v1/auth, enrolling ${int(DISTINCT)} keys) in ${f1((performance.now() - ta0) / 1000)} s\n`);
    const tl0 = performance.now();
    const cpuL0 = await Promise.all(servers.map((s) => cpuSeconds(s.child.pid!)));
    const loaded = await Promise.all(servers.map(async (s, i) => {
      const t0 = performance.now();
      const r = await loadServer(s.url, jobs[i]!, tokens[i]!);
      return { ...r, seconds: (performance.now() - t0) / 1000 };
    }));
    const loadSeconds = (performance.now() - tl0) / 1000;
    const cpuL1 = await Promise.all(servers.map((s) => cpuSeconds(s.child.pid!)));
    const loadErrors = loaded.reduce((a, l) => a + l.errors, 0);
    if (loadErrors) throw new Error(`${loadErrors} reports failed, first: ${loaded.find((l) => l.firstError)?.firstError}`);
    for (const [i, s] of servers.entries()) {
      const st = await getJson<{ devices: number; versions: Record<string, number> }>(`${s.url}/v1/admin/status`);
      if (st.devices !== PER_SERVER) throw new Error(`${names[i]} holds ${st.devices} devices after loading, expected ${PER_SERVER}`);
    }
    process.stdout.write(`loaded ${int(RECORDS)} reports (POST /v1/report, ${IN_FLIGHT_PER_SERVER} in flight per server) in ${f1(loadSeconds)} s: `
      + `${loaded.map((l, i) => `${names[i]} ${f1(l.seconds)} s`).join(', ')}; server CPU ${cpuL1.map((c, i) => f1(c - cpuL0[i]!)).join('/')} s; `
      + `${int(DISTINCT)} distinct devices, ${int(overlap.size)} at two servers\n`);

    loadRow = [`load: POST /v1/report x ${int(RECORDS)} (4 servers at once)`, int(RECORDS), f2(loadSeconds), int(RECORDS / loadSeconds), '-', '-', cpuL1.map((c, i) => f1(c - cpuL0[i]!)).join(' / ')];
  } else {
    const tl0 = performance.now();
    await Promise.all(servers.map((s) => stopChild(s.child)));
    // A server's auths and reports take 2 ms per record from its start; all of them end in the past
    // (a mirror's record later than the primary's clock + 5 min is refused as "in the future").
    const span = 2 * PER_SERVER + 1000;
    const t0 = Date.now() - SERVERS * span - 600_000;
    for (const [i, s] of servers.entries()) bulkLoad(join(tmp, dirs[i]!, 'patchwire.db'), jobs[i]!, s.url, t0 + i * span);
    const loadSeconds = (performance.now() - tl0) / 1000;
    // Restarted on their ports: the mirrors keep their URLs (approved at the primary) and the primary its upstream URL.
    const tr0 = performance.now();
    for (const [i, s] of servers.entries()) {
      s.child = (await startServe(join(tmp, dirs[i]!), args[i]!, Number(new URL(s.url).port))).child;
    }
    for (const [i, s] of servers.entries()) {
      const st = await getJson<{ devices: number }>(`${s.url}/v1/admin/status`);
      if (st.devices !== PER_SERVER) throw new Error(`${names[i]} holds ${st.devices} devices after loading, expected ${PER_SERVER}`);
    }
    process.stdout.write(`loaded ${int(RECORDS)} records with SQL into the 4 stopped servers' SQLite files in ${f1(loadSeconds)} s (identity, registry row, applied report each; `
      + `${int(DISTINCT)} distinct devices, ${int(overlap.size)} at two servers); servers restarted in ${f1((performance.now() - tr0) / 1000)} s\n`);
    loadRow = [`load: SQL into 4 SQLite files (servers stopped)`, int(RECORDS), f2(loadSeconds), int(RECORDS / loadSeconds), '-', '-', '-'];
  }

  // 3. Reconcile runs.
  interface RunRow { name: string; seconds: number; view: ReconcileView; cpu: number[] }
  const runs: RunRow[] = [];
  for (const name of ['reconcile, first run', 'reconcile, second run', 'reconcile, third run']) {
    const c0 = await Promise.all(servers.map((s) => cpuSeconds(s.child.pid!)));
    const h0 = process.hrtime.bigint();
    const r = await reconcileRun(primary.url);
    const h1 = process.hrtime.bigint();
    const c1 = await Promise.all(servers.map((s) => cpuSeconds(s.child.pid!)));
    // The first run's window on the monotonic clock the profiles' times use (µs): profile-summary.ts --window.
    if (PROF_DIR && runs.length === 0) {
      await mkdir(PROF_DIR, { recursive: true });
      await writeFile(join(PROF_DIR, 'first-run-window.json'), JSON.stringify({ fromUs: Number(h0 / 1000n), toUs: Number(h1 / 1000n) }));
      process.stdout.write(`  (first run's window written to ${join(PROF_DIR, 'first-run-window.json')}: node --import tsx bench/profile-summary.ts PROFILE --window FILE)\n`);
    }
    const view = JSON.parse(r.stdout) as ReconcileView;
    const failed = view.mirrors.filter((m) => m.error);
    if (failed.length) throw new Error(`${name}: ${failed.map((m) => `${m.url}: ${m.error}`).join('; ')}`);
    runs.push({ name, seconds: r.ms / 1000, view, cpu: c1.map((c, i) => c - c0[i]!) });
    process.stdout.write(`${name}: ${f2(r.ms / 1000)} s (CLI wall time)\n`);
  }
  const cliStart = await run(process.execPath, [BIN, '--help'], env);

  // 4. Verification.
  const tv0 = performance.now();
  const lists = await Promise.all(servers.map((s) => allDevices(s.url)));
  const verifySeconds = (performance.now() - tv0) / 1000;
  const problems: string[] = [];
  const pairs = lists.map((l) => l.map((d) => `${d.deviceId} ${d.version}`).sort().join('\n'));
  const whole = lists.map((l) => l.map((d) => JSON.stringify(d)).sort().join('\n'));
  for (const [i, l] of lists.entries()) {
    const ids = new Set(l.map((d) => d.deviceId));
    if (l.length !== DISTINCT || ids.size !== DISTINCT) problems.push(`${names[i]} lists ${l.length} records / ${ids.size} devices, expected ${DISTINCT}`);
    let wrong = 0;
    let overlapHigh = 0;
    for (const d of l) {
      if (expected.get(d.deviceId) !== d.version) wrong++;
      if (overlap.has(d.deviceId) && d.version === '1.1.0') overlapHigh++;
    }
    if (wrong) problems.push(`${names[i]}: ${wrong} devices not at their expected version`);
    if (overlapHigh !== overlap.size) problems.push(`${names[i]}: ${overlapHigh} of ${overlap.size} overlapping devices at the higher version`);
    if (pairs[i] !== pairs[0]) problems.push(`${names[i]}: (deviceId, version) set differs from the primary's`);
  }
  const wholeSame = whole.every((w) => w === whole[0]);
  if (problems.length) throw new Error(`not converged:\n  ${problems.join('\n  ')}`);

  // Report.
  const mirrorUrls = runs[0]!.view.mirrors.map((m) => m.url);
  const rows: string[][] = [loadRow];
  for (const r of runs) {
    const pulled = r.view.mirrors.reduce((a, m) => a + m.pulled, 0);
    const pushed = r.view.mirrors.reduce((a, m) => a + m.pushed, 0);
    rows.push([r.name, int(RECORDS), f2(r.seconds), int(RECORDS / r.seconds), int(pulled), int(pushed), r.cpu.map(f1).join(' / ')]);
  }
  rows.push(['verify: GET /v1/admin/devices x 4 (in parallel)', int(DISTINCT * SERVERS), f2(verifySeconds), int((DISTINCT * SERVERS) / verifySeconds), '-', '-', '-']);
  process.stdout.write(`\n${table(['phase', 'records', 'seconds', 'records/s', 'pulled', 'pushed', 'server CPU s (P / M1 / M2 / M3)'], rows)}\n`);
  process.stdout.write(`(reconcile rows: records/s = the ${int(RECORDS)} records loaded / CLI wall time, which includes ~${f2(cliStart.ms / 1000)} s of CLI start-up (\`patchwire --help\` here))\n\n`);
  const perMirror: string[][] = [];
  for (const [mi, url] of mirrorUrls.entries()) {
    perMirror.push([`mirror${mi + 1} ${url}`, ...runs.map((r) => {
      const m = r.view.mirrors.find((x) => x.url === url)!;
      return `${int(m.pulled)} / ${int(m.pushed)}`;
    })]);
  }
  process.stdout.write(`${table(['mirror (pulled / pushed)', ...runs.map((r) => r.name.replace('reconcile, ', ''))], perMirror)}\n\n`);
  process.stdout.write(`converged: all 4 servers list ${int(DISTINCT)} devices with identical (deviceId, version) sets; `
    + `all ${int(overlap.size)} devices reported at two servers are at 1.1.0 everywhere; whole records identical on all 4: ${wholeSame ? 'yes' : 'no'}\n`);
  process.stdout.write(`load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}; bench finished in ${f1((performance.now() - tStart) / 1000)} s (processes stopped, temp folder removed)\n`);
  agent.destroy();
});
