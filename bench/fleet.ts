/**
 * A million devices (issue 10): the check path of `patchwire serve` over a registry of 1,000,000
 * authenticated devices, in SQLite (one process) and in PostgreSQL (one process, then two on the
 * same database), next to fastify's hello-world and a bare JSON POST echo with a schema, same wrk
 * settings, same run.
 *
 *   node --import tsx bench/fleet.ts [--db sqlite|postgres|both] [--devices N] [--seconds N] [--cpu-prof] [--baseline DIR [--rounds N]] [--reuse DIR] [--cpu-prof-keep DIR]
 *
 * `--db`: which stores (default both). PostgreSQL is the server at 127.0.0.1:5432 (user postgres,
 * trust auth; PATCHWIRE_TEST_PG overrides, as for the tests); the bench creates a database of its
 * own, `patchwire_bench_<random>`, and drops it at the end (also on Ctrl-C).
 * `--baseline DIR`: another built checkout (e.g. main before a change), set up the same way on
 * SQLite; both servers run side by side and each SQLite measurement takes them in turn.
 * `--reuse DIR`: the loaded SQLite data of each tree (database, tokens) is kept in DIR after it is
 * first made, and later runs with the same DIR and --devices start from a copy of it (steps 1-2
 * take minutes at a million devices; the copy seconds). PostgreSQL is always loaded anew.
 *
 * 1. Temp data folder; `patchwire serve` (CPU 0) makes its database; product `acme`, release 1.0.0.
 * 2. Server stopped; N devices bulk-loaded with SQL straight into the database (one transaction):
 *    a registry row at 1.0.0 and an accepted identity (its own key) per device, and a device token
 *    per device minted with the server's secret (DeviceTokens, as /v1/auth does). SQLite: one
 *    prepared INSERT per row; PostgreSQL: INSERT ... SELECT FROM unnest($1::text[], ...) in batches
 *    of 50,000, then ANALYZE.
 * 3. Server restarted (CPU 0); `GET /v1/admin/status` must count N devices; one probe check.
 * 4. wrk (CPU 1, -t1 -c32, 3 s warm-up, then measured) with a Lua script: a random device of the N
 *    per request with its token, two bodies:
 *    - `stated`: `{deviceId, product, channel, version: "1.0.0"}` (up to date, no nonce: the
 *      figure the issue's targets were set against);
 *    - `agent`: what `patchwire check` sends: `stated` + its installId + a fresh nonce, so the
 *      server signs every answer (Ed25519 over canonical JSON, docs/protocol.md).
 *    PostgreSQL, two processes: a second `patchwire serve` on the same database (its own --data,
 *    the first one's artifacts), servers on CPU 0 and CPU 1, two wrk at once (one per server, each
 *    -t1 -c32, on either CPU); req/s and errors summed, p50 and p99 the worse of the two.
 *    Then bench/hello-server.ts (CPU 0): `GET /` and `POST /echo` (the check's body, JSON schema).
 * 5. Table: req/s, p50, p99, errors, server CPU (/proc/PID/stat; summed over the servers, 100% =
 *    one core), server CPU per request, PostgreSQL's CPU per request (its backends connected to the
 *    bench's database, /proc/PID/stat), and the servers' event-loop delay over the measured run
 *    (p99, max, the worse server: `GET /v1/admin/runtime`, read right before and right after the
 *    run; the hello server has none). Sightings flush every second during the run, so the p99 and
 *    the event-loop max include them.
 */
import { cp, writeFile, readFile, readdir, access, mkdir } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import pg from 'pg';
import { DeviceTokens } from '../src/server/device-token.js';
import { keyIdOf } from '../src/protocol/device-auth.js';
import type { RuntimeView } from '../src/protocol/wire.js';
import type { Store } from '../src/store/store.js';
import {
  CLI, LUA_DEVICE_ID, TOKEN, WRK_DONE_LUA, argValue, benchDeviceId as deviceId, cpuSeconds, loadAverage, makeTempDir, measureLoads, onCleanup,
  packageVersion, publishAcme, runBench, startChild, startPatchwire, stopChild, table, waitForOutput, wrkErrors, type Load, type Server,
  type WrkSettings,
} from './lib.js';

const DEVICES = Number(argValue('--devices') ?? 1_000_000);
const DB_MODE = argValue('--db') ?? 'both';
const SERVER_CPU = 0;
const SECOND_SERVER_CPU = 1;
const WRK_CPU = 1;
const WARMUP_SECONDS = 3;
const wrk: WrkSettings = { threads: 1, connections: 32, seconds: Number(argValue('--seconds') ?? 10), cpu: WRK_CPU };
const cpuProf = process.argv.includes('--cpu-prof');
const baseline = argValue('--baseline');
const reuse = argValue('--reuse');
/** `--rounds N` (with --baseline): each SQLite mode measures both trees N times, in alternating order. */
const ROUNDS = Number(argValue('--rounds') ?? 1);
const sqliteRuns: Array<{ tree: string; mode: string; r: Measured }> = [];
/** `--cpu-prof-keep DIR`: the profiles are copied there (the temp folder is removed at the end). */
const profKeep = argValue('--cpu-prof-keep');
/** `--server-node-arg FLAG` (repeatable, e.g. --trace-gc): more node flags for every patchwire server; `--server-log DIR`: their stdout and stderr appended to DIR/server-<pid>.log (a diagnosis of stalls). */
const serverNodeArgs = process.argv.flatMap((a, i) => (a === '--server-node-arg' && process.argv[i + 1] ? [process.argv[i + 1]!] : []));
const serverLog = argValue('--server-log');
const PG_SERVER = process.env.PATCHWIRE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** Rows per INSERT ... SELECT FROM unnest in the PostgreSQL bulk load. */
const PG_BATCH = 50_000;
/** A server with a million devices and its first migrations can take longer than lib's 15 s to listen on a loaded machine. */
const START_TIMEOUT_MS = 120_000;

/** Device i's public key: 32 bytes unique per device (the check path never verifies it; /v1/auth would). */
const publicKeyOf = (i: number) => createHash('sha256').update(`fleet-device-${i}`).digest('hex');

type Backend = 'sqlite' | 'postgres';

/**
 * Step 2 on SQLite: registry rows and identities with SQL, in one transaction (the store's own
 * upserts would take minutes for a million); the columns are those of the migrations (sqlite/migrations.ts).
 */
function bulkLoadSqlite(dbFile: string, source: string): void {
  const db = new Database(dbFile);
  try {
    db.pragma('journal_mode = WAL');
    const now = Date.now();
    const device = db.prepare(`INSERT INTO devices (device_id, product, channel, version, first_seen_at, last_seen_at, last_report_at, source, updated_at, change_seq)
      VALUES (?, 'acme', 'stable', '1.0.0', ?, ?, ?, ?, ?, ?)`);
    const identity = db.prepare(`INSERT INTO device_identities (device_id, product, channel, public_key, key_id, status, pending_public_key, pending_key_id, pending_at, created_at, updated_at)
      VALUES (?, 'acme', 'stable', ?, ?, 'accepted', NULL, NULL, NULL, ?, ?)`);
    const high = (db.prepare('SELECT coalesce(max(change_seq), 0) AS s FROM devices').get() as { s: number }).s;
    db.transaction(() => {
      for (let i = 1; i <= DEVICES; i++) {
        const id = deviceId(i);
        const pk = publicKeyOf(i);
        device.run(id, now, now, now, source, now, high + i);
        identity.run(id, pk, keyIdOf(pk), now, now);
      }
    })();
  } finally {
    db.close();
  }
}

/**
 * Step 2 on PostgreSQL: the same rows (columns of pg-migrations.ts), in one transaction, as
 * INSERT ... SELECT FROM unnest of array parameters in batches; change_seq from the store's own
 * sequence, as its writes take it. ANALYZE afterwards so the planner knows the tables' size.
 */
async function bulkLoadPostgres(url: string, source: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const now = Date.now();
    await c.query('BEGIN');
    for (let start = 1; start <= DEVICES; start += PG_BATCH) {
      const ids: string[] = [];
      const pks: string[] = [];
      const kids: string[] = [];
      for (let i = start; i < start + PG_BATCH && i <= DEVICES; i++) {
        const pk = publicKeyOf(i);
        ids.push(deviceId(i));
        pks.push(pk);
        kids.push(keyIdOf(pk));
      }
      await c.query(`INSERT INTO devices (device_id, product, channel, version, first_seen_at, last_seen_at, last_report_at, source, updated_at, change_seq)
        SELECT d, 'acme', 'stable', '1.0.0', $2, $2, $2, $3, $2, nextval('devices_change_seq') FROM unnest($1::text[]) AS t(d)`, [ids, now, source]);
      await c.query(`INSERT INTO device_identities (device_id, product, channel, public_key, key_id, status, pending_public_key, pending_key_id, pending_at, created_at, updated_at)
        SELECT d, 'acme', 'stable', pk, kid, 'accepted', NULL, NULL, NULL, $4, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS t(d, pk, kid)`, [ids, pks, kids, now]);
    }
    await c.query('COMMIT');
    await c.query('ANALYZE devices');
    await c.query('ANALYZE device_identities');
  } finally {
    await c.end();
  }
}

/** A token per device, minted with the secret the server keeps in its settings (what /v1/auth answers). */
async function mintTokens(store: Store, file: string): Promise<string> {
  const lines: string[] = [];
  try {
    const tokens = new DeviceTokens();
    await tokens.load(store);
    const now = Date.now();
    for (let i = 1; i <= DEVICES; i++) {
      lines.push(tokens.mint({ deviceId: deviceId(i), product: 'acme', keyId: keyIdOf(publicKeyOf(i)), issuedAt: now, expiresAt: now + 3 * 3600_000 }));
    }
  } finally {
    await store.close();
  }
  await writeFile(file, `${lines.join('\n')}\n`);
  return lines[0]!;
}

/** `agent`: the request `patchwire check` sends (installId, nonce: a signed answer); `stated`: without both. */
function checkScript(mode: 'stated' | 'agent', tokensFile: string): string {
  const extra = mode === 'agent'
    ? `.. ',"installId":"' .. string.format("%016x", i) .. '","nonce":"' .. string.format("%08x%08x%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), math.random(0, 0x7fffffff)) .. '"'`
    : '';
  return `-- generated by bench/fleet.ts: POST /v1/check for a random one of ${DEVICES} devices (${mode}), with its device token
local N = ${DEVICES}
local tokens = {}
init = function(args)
  math.randomseed(os.time())
  local f = io.open("${tokensFile}")
  for i = 1, N do tokens[i] = "Bearer " .. f:read("*l") end
  f:close()
end
request = function()
  local i = math.random(N)
  local id = ${LUA_DEVICE_ID}
  local body = '{"deviceId":"' .. id .. '","product":"acme","channel":"stable","version":"1.0.0"' ${extra} .. '}'
  return wrk.format("POST", "/v1/check", { ["Content-Type"] = "application/json", ["Authorization"] = tokens[i] }, body)
end
${WRK_DONE_LUA}`;
}

async function admin<T>(url: string, path: string): Promise<T> {
  const res = await fetch(`${url}/v1/admin${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  if (res.status !== 200) throw new Error(`GET /v1/admin${path} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

/** One measured row: over one server or several measured at once (summed; latency the worse one). */
interface Measured {
  servers: number;
  requests: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** The errors by wrk's kind (connect, read, write, status = non-2xx/3xx, timeout), the non-zero ones. */
  errorKinds: string;
  /** Cores the servers used together during the measured run (1.0 = one core). */
  serverCpu: number;
  cpuPerReqUs: number;
  /** The servers' main threads (the event loop) only: without the sighting writer thread, libuv's pool, GC helpers. */
  mainCpuPerReqUs: number;
  /** PostgreSQL backends' CPU per request (the bench's database only). */
  dbCpuPerReqUs?: number;
  eld?: RuntimeView['eventLoopDelayMs'];
}

/** The PostgreSQL server's processes serving `database` and their CPU seconds so far. */
async function backendCpu(database: string): Promise<Map<number, number>> {
  const pids = await withPgAdmin((c) => c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [database]));
  const out = new Map<number, number>();
  for (const { pid } of pids.rows) {
    const s = await cpuSeconds(pid).catch(() => undefined);
    if (s !== undefined) out.set(pid, s);
  }
  return out;
}

/** CPU seconds between two snapshots; a backend that appeared in between counts from zero (one that ended is lost). */
function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, s] of after) sum += s - (before.get(pid) ?? 0);
  return sum;
}

/** A warm-up, then the measured run of every target at once; patchwire servers also give their event-loop delay. */
async function measure(label: string, targets: Array<{ server: Server; script: string; wrkCpu?: number | string }>, opts: { patchwire: boolean; pgDatabase?: string; onMeasured?: () => void }): Promise<Measured> {
  process.stdout.write(`  ${label}: warm-up ${WARMUP_SECONDS} s, then ${wrk.seconds} s measured\n`);
  const loads: Load[] = targets.map((t) => ({ url: t.server.url, script: t.script, pid: t.server.child.pid!, wrk: { ...wrk, cpu: t.wrkCpu ?? WRK_CPU } }));
  let db0 = new Map<number, number>();
  const { runs, cpuSeconds: cpu, mainThreadCpuSeconds: mainCpu } = await measureLoads(loads, WARMUP_SECONDS, async () => {
    // Each read of GET /v1/admin/runtime starts a new window: the next one covers the measured run.
    if (opts.patchwire) await Promise.all(loads.map((l) => admin(l.url, '/runtime').catch(() => undefined)));
    if (opts.pgDatabase) db0 = await backendCpu(opts.pgDatabase);
    opts.onMeasured?.();
  });
  const dbCpu = opts.pgDatabase ? cpuBetween(db0, await backendCpu(opts.pgDatabase)) : undefined;
  // A server from before GET /v1/admin/runtime answers 404: no loop delay for it.
  const elds = opts.patchwire ? await Promise.all(loads.map((l) => admin<RuntimeView>(l.url, '/runtime').then((v) => v.eventLoopDelayMs, () => undefined))) : [];
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  const cpuSum = cpu.reduce((a, b) => a + b, 0);
  const seconds = Math.max(...runs.map((r) => r.durationUs)) / 1e6;
  const known = elds.filter((e): e is NonNullable<typeof e> => e !== undefined);
  return {
    servers: targets.length,
    requests,
    reqPerSec: runs.reduce((n, r) => n + r.reqPerSec, 0),
    p50Ms: Math.max(...runs.map((r) => r.p50Ms)),
    p99Ms: Math.max(...runs.map((r) => r.p99Ms)),
    errors: runs.reduce((n, r) => n + wrkErrors(r), 0),
    errorKinds: (['connect', 'read', 'write', 'status', 'timeout'] as const)
      .map((k) => [k, runs.reduce((n, r) => n + r.errors[k], 0)] as const).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', '),
    serverCpu: cpuSum / seconds,
    cpuPerReqUs: (cpuSum * 1e6) / requests,
    mainCpuPerReqUs: (mainCpu.reduce((a, b) => a + b, 0) * 1e6) / requests,
    dbCpuPerReqUs: dbCpu === undefined ? undefined : (dbCpu * 1e6) / requests,
    eld: known.length ? { ...known[0]!, p99: Math.max(...known.map((e) => e.p99)), max: Math.max(...known.map((e) => e.max)) } : undefined,
  };
}

interface Tree { label: string; cli: string }
interface Prepared { tree: Tree; backend: Backend; dir: string; data: string; args: string[]; stated: string; agent: string; firstToken: string }

/** Steps 1-2 for one tree and store: its database with N devices, their tokens, the two Lua scripts. */
async function prepare(tmp: string, tree: Tree, backend: Backend, pgUrl?: string): Promise<Prepared> {
  const dir = join(tmp, `${tree.label}-${backend}`.replace(/\W+/g, '-'));
  const data = join(dir, 'data');
  const args = pgUrl ? ['--db', pgUrl] : [];
  process.stdout.write(`[${tree.label}, ${backend}] ${tree.cli} ${args.join(' ')}\n`);
  const kept = reuse && !pgUrl ? join(reuse, `${tree.label}-sqlite-${DEVICES}`.replace(/\W+/g, '-')) : undefined;
  const lua = async (name: string, text: string) => { const f = join(dir, name); await writeFile(f, text); return f; };
  const tokensFile = join(dir, 'tokens.txt');
  if (kept && (await access(join(kept, 'READY')).then(() => true, () => false))) {
    const t0 = performance.now();
    await cp(join(kept, 'data'), data, { recursive: true });
    await cp(join(kept, 'tokens.txt'), tokensFile);
    const firstToken = (await readFile(tokensFile, 'utf8')).slice(0, 1024).split('\n')[0]!;
    process.stdout.write(`  reused the loaded data of ${kept} (copied in ${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
    return { tree, backend, dir, data, args, firstToken, stated: await lua('stated.lua', checkScript('stated', tokensFile)), agent: await lua('agent.lua', checkScript('agent', tokensFile)) };
  }
  const server = await startPatchwire(data, { cpu: SERVER_CPU, cli: tree.cli, args, timeoutMs: START_TIMEOUT_MS });
  await publishAcme(dir, server.url, tree.cli);
  const source = server.url;
  await stopChild(server.child);
  const t0 = performance.now();
  const dbFile = join(data, 'patchwire.db');
  if (pgUrl) await bulkLoadPostgres(pgUrl, source);
  else bulkLoadSqlite(dbFile, source);
  const t1 = performance.now();
  const store: Store = pgUrl
    ? await (await import('../src/store/postgres/postgres-store.js')).PostgresStore.open(pgUrl)
    : await (await import('../src/store/sqlite/sqlite-store.js')).SqliteStore.open(dbFile);
  const firstToken = await mintTokens(store, tokensFile);
  process.stdout.write(`  bulk-loaded ${DEVICES} devices + identities in ${((t1 - t0) / 1000).toFixed(1)} s; minted their tokens in ${((performance.now() - t1) / 1000).toFixed(1)} s\n`);
  if (kept) {
    await mkdir(kept, { recursive: true });
    await cp(data, join(kept, 'data'), { recursive: true });
    await cp(tokensFile, join(kept, 'tokens.txt'));
    await writeFile(join(kept, 'READY'), `${new Date().toISOString()}\n`);
    process.stdout.write(`  kept the loaded data in ${kept} for --reuse\n`);
  }
  return { tree, backend, dir, data, args, firstToken, stated: await lua('stated.lua', checkScript('stated', tokensFile)), agent: await lua('agent.lua', checkScript('agent', tokensFile)) };
}

/** Step 3: a server on the loaded data, checked to count N devices and to answer a probe. */
async function serve(p: Prepared, opts: { data?: string; args?: string[]; cpu?: number; nodeArgs?: string[] } = {}): Promise<Server> {
  const server = await startPatchwire(opts.data ?? p.data, { cpu: opts.cpu ?? SERVER_CPU, cli: p.tree.cli, args: [...p.args, ...(opts.args ?? [])], nodeArgs: [...serverNodeArgs, ...(opts.nodeArgs ?? [])], timeoutMs: START_TIMEOUT_MS });
  if (serverLog) {
    await mkdir(serverLog, { recursive: true });
    const log = createWriteStream(join(serverLog, `server-${server.child.pid}.log`), { flags: 'a' });
    server.child.stdout!.pipe(log);
    server.child.stderr!.pipe(log);
  }
  const t0 = performance.now();
  const before = await admin<{ devices: number }>(server.url, '/status?product=acme');
  process.stdout.write(`[${p.tree.label}, ${p.backend}] server ${server.url} (pid ${server.child.pid}, CPU ${opts.cpu ?? SERVER_CPU}) sees ${before.devices} devices (status read: ${(performance.now() - t0).toFixed(0)} ms)\n`);
  if (before.devices !== DEVICES) throw new Error(`the server sees ${before.devices} devices, expected ${DEVICES}`);
  const probe = await fetch(`${server.url}/v1/check`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${p.firstToken}` },
    body: JSON.stringify({ deviceId: deviceId(1), product: 'acme', channel: 'stable', version: '1.0.0' }),
  });
  const probeBody = (await probe.json()) as { status?: string };
  if (probe.status !== 200 || probeBody.status !== 'up-to-date') throw new Error(`probe check: HTTP ${probe.status} ${JSON.stringify(probeBody)}`);
  return server;
}

/** Runs `fn` on a connection to the PostgreSQL server's maintenance database. */
async function withPgAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_SERVER, connectionTimeoutMillis: 5_000 });
  try {
    await c.connect();
  } catch (err) {
    throw new Error(`PostgreSQL at ${new URL(PG_SERVER).host} is not reachable (${(err as Error).message}); start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start, or run --db sqlite`, { cause: err });
  }
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A database of the bench's own on the PostgreSQL server, dropped at cleanup (with any connection left on it). */
async function benchDatabase(): Promise<{ name: string; url: string }> {
  const name = `patchwire_bench_${randomBytes(6).toString('hex')}`;
  await withPgAdmin((c) => c.query(`CREATE DATABASE ${name}`));
  onCleanup(() => withPgAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)));
  const u = new URL(PG_SERVER);
  u.pathname = `/${name}`;
  return { name, url: u.toString() };
}

const MODES = [['stated', 'version stated'], ['agent', "agent's request (signed)"]] as const;

async function main(): Promise<void> {
  if (!['sqlite', 'postgres', 'both'].includes(DB_MODE)) throw new Error(`--db ${DB_MODE}: give sqlite, postgres or both`);
  if (!(Number.isInteger(DEVICES) && DEVICES >= 1 && DEVICES < 1 << 24)) throw new Error(`--devices ${DEVICES}: give a whole number from 1 to ${(1 << 24) - 1}`);
  const tmp = await makeTempDir('patchwire-bench-fleet-');
  const fastify = await packageVersion('fastify');
  process.stdout.write(`patchwire fleet bench: ${DEVICES} devices, --db ${DB_MODE}, node ${process.version}, fastify ${fastify}, server on CPU ${SERVER_CPU}, wrk on CPU ${WRK_CPU}, load average ${loadAverage()}, temp ${tmp}\n`);
  const rows: Array<[string, Measured]> = [];
  const profiles: Array<{ p: Prepared; server: () => Promise<Server> }> = [];

  if (DB_MODE !== 'postgres') {
    const trees: Tree[] = [...(baseline ? [{ label: 'baseline', cli: join(baseline, 'bin', 'patchwire.js') }] : []), { label: 'this tree', cli: CLI }];
    const prepared: Prepared[] = [];
    for (const t of trees) prepared.push(await prepare(tmp, t, 'sqlite'));
    const servers: Server[] = [];
    for (const p of prepared) servers.push(await serve(p));
    // Both trees' servers run side by side (the idle one costs nothing); each mode measures them in
    // turn, so a change in the machine's load hits both alike.
    process.stdout.write(`wrk -t${wrk.threads} -c${wrk.connections} -d${wrk.seconds}s --latency (CPU ${WRK_CPU}):\n`);
    for (const [mode, text] of MODES) {
      for (let round = 0; round < ROUNDS; round++) {
        // Odd rounds take the trees in the other order: the first one measured must not always be the same.
        const order = round % 2 === 0 ? [...prepared.entries()] : [...prepared.entries()].reverse();
        for (const [i, p] of order) {
          const name = `${baseline ? `${p.tree.label}: ` : ''}sqlite, 1 process: check, ${text}${ROUNDS > 1 ? ` (${round + 1})` : ''}`;
          const r = await measure(name, [{ server: servers[i]!, script: p[mode] }], { patchwire: true });
          rows.push([name, r]);
          sqliteRuns.push({ tree: p.tree.label, mode, r });
        }
      }
    }
    for (const s of servers) await afterRun(s);
    const mine = prepared[prepared.length - 1]!;
    profiles.push({ p: mine, server: () => serve(mine, { nodeArgs: profArgs(mine) }) });
  }

  if (DB_MODE !== 'sqlite') {
    const db = await benchDatabase();
    process.stdout.write(`PostgreSQL database ${db.name} on ${new URL(PG_SERVER).host} (dropped at the end)\n`);
    const p = await prepare(tmp, { label: 'this tree', cli: CLI }, 'postgres', db.url);
    const a = await serve(p);
    for (const [mode, text] of MODES) {
      const name = `postgres, 1 process: check, ${text}`;
      rows.push([name, await measure(name, [{ server: a, script: p[mode] }], { patchwire: true, pgDatabase: db.name })]);
    }
    // The second process: its own --data folder (each holds a lock on its own), the first one's artifacts.
    const b = await serve(p, { data: join(p.dir, 'data-b'), args: ['--store', join(p.data, 'artifacts')], cpu: SECOND_SERVER_CPU });
    for (const [mode, text] of MODES) {
      const name = `postgres, 2 processes: check, ${text}`;
      rows.push([name, await measure(name, [{ server: a, script: p[mode], wrkCpu: '0,1' }, { server: b, script: p[mode], wrkCpu: '0,1' }], { patchwire: true, pgDatabase: db.name })]);
    }
    await afterRun(a);
    await afterRun(b);
    profiles.push({ p, server: () => serve(p, { nodeArgs: profArgs(p) }) });
  }

  const helloLua = join(tmp, 'hello.lua');
  await writeFile(helloLua, `-- GET /\n${WRK_DONE_LUA}`);
  const echoLua = join(tmp, 'echo.lua');
  await writeFile(echoLua, `-- POST /echo, the check's body shape
wrk.method = "POST"
wrk.path = "/echo"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"deviceId":"aa:bb:cc:00:00:01","product":"acme","channel":"stable","version":"1.0.0"}'
${WRK_DONE_LUA}`);
  const helloChild = startChild('taskset', ['-c', String(SERVER_CPU), process.execPath, '--import', 'tsx', 'bench/hello-server.ts']);
  const hello: Server = { child: helloChild, url: (await waitForOutput(helloChild, /hello: listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]! };
  const helloRes = await measure('GET / (hello-world)', [{ server: hello, script: helloLua }], { patchwire: false });
  const echo = await measure('POST /echo (JSON + schema)', [{ server: hello, script: echoLua }], { patchwire: false });
  await stopChild(helloChild);

  const ms = (n: number) => `${n.toFixed(2)} ms`;
  const row = (name: string, r: Measured) => [
    name, r.reqPerSec.toFixed(0), ms(r.p50Ms), ms(r.p99Ms), r.errors ? `${r.errors} (${r.errorKinds})` : '0', `${(r.serverCpu * 100).toFixed(0)}%`,
    `${r.cpuPerReqUs.toFixed(0)} us`, `${r.mainCpuPerReqUs.toFixed(0)} us`, `${(r.cpuPerReqUs / echo.cpuPerReqUs).toFixed(2)}x`, `${(r.reqPerSec / helloRes.reqPerSec).toFixed(2)}x`,
    r.dbCpuPerReqUs === undefined ? '-' : `${r.dbCpuPerReqUs.toFixed(0)} us`,
    r.eld ? `${ms(r.eld.p99)} / ${ms(r.eld.max)}` : '-',
  ];
  process.stdout.write(`\n${table(
    ['target', 'req/s', 'p50', 'p99', 'errors', 'server CPU', 'CPU/req', 'main thread CPU/req', 'CPU/req vs echo', 'req/s vs hello', 'PostgreSQL CPU/req', 'loop delay p99 / max'],
    [...rows.map(([n, r]) => row(n, r)), row(`fastify ${fastify} POST /echo (JSON + schema)`, echo), row(`fastify ${fastify} hello-world GET /`, helloRes)],
  )}\n`);
  process.stdout.write('(2 processes: req/s, errors, server CPU and CPU/req over both servers; p50, p99 and loop delay the worse of the two)\n');
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT MET');
  for (const [name, r] of rows) {
    const cpu = r.cpuPerReqUs / echo.cpuPerReqUs;
    const rps = r.reqPerSec / r.servers / helloRes.reqPerSec;
    process.stdout.write(`${name}: CPU/req <= 1.25x echo ${verdict(cpu <= 1.25)} (${cpu.toFixed(2)}x); req/s per process >= 0.5x hello ${verdict(rps >= 0.5)} (${rps.toFixed(2)}x); ` +
      `p99 < 10 ms ${verdict(r.p99Ms < 10)} (${ms(r.p99Ms)}); zero errors ${verdict(r.errors === 0)} (${r.errors}); loop stall <= 20 ms ${r.eld ? `${verdict(r.eld.max <= 20)} (${ms(r.eld.max)})` : 'n/a (no GET /v1/admin/runtime)'}\n`);
  }
  if (baseline && DB_MODE !== 'postgres') {
    // Over every round: all CPU time over all requests, per tree.
    const perReq = (tree: string, mode: string, main: boolean) => {
      const runs = sqliteRuns.filter((x) => x.tree === tree && x.mode === mode);
      return runs.reduce((n, x) => n + (main ? x.r.mainCpuPerReqUs : x.r.cpuPerReqUs) * x.r.requests, 0) / runs.reduce((n, x) => n + x.r.requests, 0);
    };
    for (const [mode, text] of MODES) {
      const [b, m] = [perReq('baseline', mode, false), perReq('this tree', mode, false)];
      const [bm, mm] = [perReq('baseline', mode, true), perReq('this tree', mode, true)];
      process.stdout.write(`CPU per request on SQLite, this tree vs baseline (${text}${ROUNDS > 1 ? `, ${ROUNDS} rounds` : ''}): ${b.toFixed(0)} -> ${m.toFixed(0)} us (${(((m / b) - 1) * 100).toFixed(1)}%); main thread ${bm.toFixed(0)} -> ${mm.toFixed(0)} us (${(((mm / bm) - 1) * 100).toFixed(1)}%)\n`);
    }
  }
  if (Math.min(...rows.map(([, r]) => r.serverCpu / r.servers), helloRes.serverCpu, echo.serverCpu) < 0.9) {
    process.stdout.write('WARNING: a server got under 90% of its core (other load on the machine?): trust the CPU/req ratio, not req/s; latency and loop delay then include time the server waited for the CPU\n');
  }
  for (const line of afterLines) process.stdout.write(`${line}\n`);
  if ([...rows.map(([, r]) => r), echo, helloRes].some((r) => r.errors !== 0) || afterLines.some((l) => l.includes('UNEXPECTED'))) process.exitCode = 1;

  if (cpuProf) {
    for (const { p, server } of profiles) {
      const t0 = performance.now();
      const s = await server();
      process.stdout.write(`\n--cpu-prof run (this tree on ${p.backend}, server under node --cpu-prof, the agent's request):\n`);
      let skipMs = 0;
      const r = await measure(`POST /v1/check (profiled, ${p.backend})`, [{ server: s, script: p.agent }], { patchwire: true, onMeasured: () => { skipMs = performance.now() - t0; } });
      process.stdout.write(`  profiled: ${r.reqPerSec.toFixed(0)} req/s, ${r.cpuPerReqUs.toFixed(0)} us CPU/req (profiler included); the summary leaves out start-up and warm-up\n`);
      await stopChild(s.child, 15000);
      const dir = join(p.dir, 'prof');
      const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
      if (files.length === 0) throw new Error('the server wrote no .cpuprofile');
      if (profKeep) {
        await mkdir(profKeep, { recursive: true });
        await cp(join(dir, files[0]!), join(profKeep, `fleet-${p.backend}-${Date.now()}.cpuprofile`));
      }
      const { summariseProfile } = await import('./profile-summary.js');
      process.stdout.write(`${summariseProfile(JSON.parse(await readFile(join(dir, files[0]!), 'utf8')), skipMs)}\n`);
    }
  }
}

const profArgs = (p: Prepared) => ['--cpu-prof', `--cpu-prof-dir=${join(p.dir, 'prof')}`];

const afterLines: string[] = [];

/** The registry a server sees after its runs (must still be N devices), its RSS; then it is stopped. */
async function afterRun(s: Server): Promise<void> {
  const a = await admin<{ devices: number; runtime?: RuntimeView }>(s.url, '/status?product=acme');
  afterLines.push(`[${s.url}] registry after the runs: ${a.devices} devices (${a.devices === DEVICES ? 'ok' : 'UNEXPECTED'})${a.runtime ? `; server RSS ${(a.runtime.rssBytes / 1e6).toFixed(0)} MB` : ''}`);
  await stopChild(s.child);
}

runBench(main);
