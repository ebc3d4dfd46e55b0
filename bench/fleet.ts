/**
 * A million devices (issue 10): the check path of one `patchwire serve` over a registry of
 * 1,000,000 authenticated devices, next to fastify's hello-world and a bare JSON POST echo with a
 * schema, same wrk settings, same run.
 *
 *   node --import tsx bench/fleet.ts [--devices N] [--seconds N] [--cpu-prof] [--baseline DIR]
 *
 * `--baseline DIR`: another built checkout (e.g. main before this change), set up the same way;
 * both servers run side by side and each measurement takes them in turn (the before/after table).
 *
 * 1. Temp data folder; `patchwire serve` (CPU 0) makes its database; product `acme`, release 1.0.0.
 * 2. Server stopped; N devices bulk-loaded with SQL straight into `<data>/patchwire.db` (one
 *    transaction): a registry row at 1.0.0 and an accepted identity (its own key) per device, and a
 *    device token per device minted with the server's secret (DeviceTokens, as /v1/auth does).
 * 3. Server restarted (CPU 0); `GET /v1/admin/status` must count N devices.
 * 4. wrk (CPU 1, -t1 -c32, 3 s warm-up, then measured) with a Lua script: a random device of the N
 *    per request with its token, two bodies:
 *    - `stated`: `{deviceId, product, channel, version: "1.0.0"}` (up to date, no nonce: the
 *      figure the issue's targets were set against);
 *    - `agent`: what `patchwire check` sends: `stated` + its installId + a fresh nonce, so the
 *      server signs every answer (Ed25519 over canonical JSON, docs/protocol.md).
 *    Then bench/hello-server.ts (CPU 0): `GET /` and `POST /echo` (the check's body, JSON schema).
 * 5. Table: req/s, p50, p99, errors, server CPU per request (/proc/PID/stat), and the server's
 *    event-loop delay over the measured run (p99, max: `GET /v1/admin/runtime`, read right
 *    before and right after the run; the hello server has none).
 *    Sightings flush every `--sighting-flush` (the default 5 s) during the run, so the p99 and the
 *    event-loop max include them.
 */
import { writeFile, readFile, readdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { DeviceTokens } from '../src/server/device-token.js';
import { keyIdOf } from '../src/protocol/device-auth.js';
import type { RuntimeView } from '../src/protocol/wire.js';
import {
  CLI, TOKEN, WRK_DONE_LUA, cleanup, cpuSeconds, makeTempDir, packageVersion, publishAcme, runMain, runWrk, startChild,
  startPatchwire, stopChild, table, waitForOutput, type WrkResult, type WrkSettings,
} from './lib.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : dflt);
const DEVICES = arg('--devices', 1_000_000);
const SERVER_CPU = 0;
const WRK_CPU = 1;
const WARMUP_SECONDS = 3;
const wrk: WrkSettings = { threads: 1, connections: 32, seconds: arg('--seconds', 10), cpu: WRK_CPU };
const cpuProf = argv.includes('--cpu-prof');
const baseline = argv.includes('--baseline') ? argv[argv.indexOf('--baseline') + 1] : undefined;

/** Device i (1-based) -> aa:bb:cc:xx:xx:xx, the same formula as the Lua script (up to 16 M devices). */
function deviceId(i: number): string {
  const h = (n: number) => n.toString(16).padStart(2, '0');
  return `aa:bb:cc:${h((i >> 16) & 255)}:${h((i >> 8) & 255)}:${h(i & 255)}`;
}

/** Device i's public key: 32 bytes unique per device (the check path never verifies it; /v1/auth would). */
const publicKeyOf = (i: number) => createHash('sha256').update(`fleet-device-${i}`).digest('hex');

/**
 * Steps 2: registry rows and identities with SQL, in one transaction (the store's own upserts
 * would take minutes for a million); the columns are those of the migrations (sqlite/migrations.ts).
 */
function bulkLoad(dbFile: string, source: string): { ms: number } {
  const t0 = performance.now();
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
  return { ms: performance.now() - t0 };
}

/** A token per device, minted with the secret the server keeps in its settings (what /v1/auth answers). */
async function mintTokens(dbFile: string, file: string): Promise<{ ms: number; first: string[] }> {
  const t0 = performance.now();
  const { SqliteStore } = await import('../src/store/sqlite/sqlite-store.js');
  const store = await SqliteStore.open(dbFile);
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
  return { ms: performance.now() - t0, first: lines.slice(0, 4) };
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
  local id = string.format("aa:bb:cc:%02x:%02x:%02x", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
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

type Measured = WrkResult & { serverCpu: number; eld?: RuntimeView['eventLoopDelayMs'] };

/** Warm-up, then the measured run: the server's CPU use (1.0 = one core) and, for patchwire, its event-loop delay. */
async function measure(label: string, url: string, script: string, pid: number, patchwire: boolean): Promise<Measured> {
  process.stdout.write(`  ${label}: warm-up ${WARMUP_SECONDS} s, then ${wrk.seconds} s measured\n`);
  await runWrk(url, script, { ...wrk, seconds: WARMUP_SECONDS });
  if (patchwire) await admin(url, '/runtime').catch(() => undefined);
  const c0 = await cpuSeconds(pid);
  const r = await runWrk(url, script, wrk);
  const c1 = await cpuSeconds(pid);
  // A server from before GET /v1/admin/runtime answers 404: no loop delay for it.
  const eld = patchwire ? await admin<RuntimeView>(url, '/runtime').then((v) => v.eventLoopDelayMs, () => undefined) : undefined;
  return { ...r, serverCpu: (c1 - c0) / (r.durationUs / 1e6), eld };
}

const errorsOf = (r: WrkResult) => r.errors.status + r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout;
const cpuPerReqUs = (r: Measured) => (r.serverCpu * 1e6) / r.reqPerSec;

interface Tree { label: string; cli: string }
interface Prepared { tree: Tree; data: string; stated: string; agent: string }

/** Steps 1-2 for one tree: its database with N devices, their tokens, the two Lua scripts. */
async function prepare(tmp: string, tree: Tree): Promise<Prepared> {
  const dir = join(tmp, tree.label.replace(/\W+/g, '-'));
  const data = join(dir, 'data');
  process.stdout.write(`[${tree.label}] ${tree.cli}\n`);
  const server = await startPatchwire(data, { cpu: SERVER_CPU, cli: tree.cli });
  await publishAcme(dir, server.url, tree.cli);
  const source = server.url;
  await stopChild(server.child);
  const db = join(data, 'patchwire.db');
  const loaded = bulkLoad(db, source);
  const tokensFile = join(dir, 'tokens.txt');
  const minted = await mintTokens(db, tokensFile);
  firstToken.set(data, minted.first[0]!);
  process.stdout.write(`  bulk-loaded ${DEVICES} devices + identities in ${(loaded.ms / 1000).toFixed(1)} s; minted their tokens in ${(minted.ms / 1000).toFixed(1)} s\n`);
  const lua = async (name: string, text: string) => { const f = join(dir, name); await writeFile(f, text); return f; };
  return { tree, data, stated: await lua('stated.lua', checkScript('stated', tokensFile)), agent: await lua('agent.lua', checkScript('agent', tokensFile)) };
}

const firstToken = new Map<string, string>();

/** Step 3: the server on its loaded data, checked to count N devices and to answer a probe. */
async function serve(p: Prepared) {
  const server = await startPatchwire(p.data, { cpu: SERVER_CPU, cli: p.tree.cli });
  const t0 = performance.now();
  const before = await admin<{ devices: number }>(server.url, '/status?product=acme');
  process.stdout.write(`[${p.tree.label}] server ${server.url} (pid ${server.child.pid}) sees ${before.devices} devices (status read: ${(performance.now() - t0).toFixed(0)} ms)\n`);
  if (before.devices !== DEVICES) throw new Error(`the server sees ${before.devices} devices, expected ${DEVICES}`);
  const probe = await fetch(`${server.url}/v1/check`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${firstToken.get(p.data)}` },
    body: JSON.stringify({ deviceId: deviceId(1), product: 'acme', channel: 'stable', version: '1.0.0' }),
  });
  const probeBody = (await probe.json()) as { status?: string };
  if (probe.status !== 200 || probeBody.status !== 'up-to-date') throw new Error(`probe check: HTTP ${probe.status} ${JSON.stringify(probeBody)}`);
  return server;
}

async function main(): Promise<void> {
  const tmp = await makeTempDir('patchwire-bench-fleet-');
  const fastify = await packageVersion('fastify');
  process.stdout.write(`patchwire fleet bench: ${DEVICES} devices, node ${process.version}, fastify ${fastify}, server on CPU ${SERVER_CPU}, wrk on CPU ${WRK_CPU}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}, temp ${tmp}\n`);
  const trees: Tree[] = [...(baseline ? [{ label: 'baseline', cli: join(baseline, 'bin', 'patchwire.js') }] : []), { label: 'this tree', cli: CLI }];
  const prepared: Prepared[] = [];
  for (const t of trees) prepared.push(await prepare(tmp, t));
  const servers = [];
  for (const p of prepared) servers.push(await serve(p));

  const helloLua = join(tmp, 'hello.lua');
  await writeFile(helloLua, `-- GET /\n${WRK_DONE_LUA}`);
  const echoLua = join(tmp, 'echo.lua');
  await writeFile(echoLua, `-- POST /echo, the check's body shape
wrk.method = "POST"
wrk.path = "/echo"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"deviceId":"aa:bb:cc:00:00:01","product":"acme","channel":"stable","version":"1.0.0"}'
${WRK_DONE_LUA}`);

  // Both trees' servers run side by side (the idle one costs nothing); each mode measures them in
  // turn, so a change in the machine's load hits both alike.
  process.stdout.write(`wrk -t${wrk.threads} -c${wrk.connections} -d${wrk.seconds}s --latency (CPU ${WRK_CPU}):\n`);
  const rows: Array<[string, Measured]> = [];
  for (const mode of ['stated', 'agent'] as const) {
    for (const [i, p] of prepared.entries()) {
      const name = `${p.tree.label}: check, ${mode === 'stated' ? 'version stated' : "agent's request (signed)"}`;
      rows.push([name, await measure(name, servers[i]!.url, p[mode], servers[i]!.child.pid!, true)]);
    }
  }
  const after = [];
  for (const s of servers) {
    after.push(await admin<{ devices: number; runtime: RuntimeView }>(s.url, '/status?product=acme'));
    await stopChild(s.child);
  }

  const hello = startChild('taskset', ['-c', String(SERVER_CPU), process.execPath, '--import', 'tsx', 'bench/hello-server.ts']);
  const helloUrl = (await waitForOutput(hello, /hello: listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
  const helloRes = await measure('GET / (hello-world)', helloUrl, helloLua, hello.pid!, false);
  const echo = await measure('POST /echo (JSON + schema)', helloUrl, echoLua, hello.pid!, false);
  await stopChild(hello);

  const ms = (n: number) => `${n.toFixed(2)} ms`;
  const row = (name: string, r: Measured) => [
    name, r.reqPerSec.toFixed(0), ms(r.p50Ms), ms(r.p99Ms), String(errorsOf(r)), `${(r.serverCpu * 100).toFixed(0)}%`,
    `${cpuPerReqUs(r).toFixed(0)} us`, `${(cpuPerReqUs(r) / cpuPerReqUs(echo)).toFixed(2)}x`, `${(r.reqPerSec / helloRes.reqPerSec).toFixed(2)}x`,
    r.eld ? `${ms(r.eld.p99)} / ${ms(r.eld.max)}` : '-',
  ];
  process.stdout.write(`\n${table(
    ['target', 'req/s', 'p50', 'p99', 'errors', 'server CPU', 'CPU/req', 'CPU/req vs echo', 'req/s vs hello', 'loop delay p99 / max'],
    [...rows.map(([n, r]) => row(n, r)), row(`fastify ${fastify} POST /echo (JSON + schema)`, echo), row(`fastify ${fastify} hello-world GET /`, helloRes)],
  )}\n`);
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT MET');
  for (const [name, r] of rows) {
    const cpu = cpuPerReqUs(r) / cpuPerReqUs(echo);
    const rps = r.reqPerSec / helloRes.reqPerSec;
    process.stdout.write(`${name}: CPU/req <= 1.25x echo ${verdict(cpu <= 1.25)} (${cpu.toFixed(2)}x); req/s >= 0.5x hello ${verdict(rps >= 0.5)} (${rps.toFixed(2)}x); ` +
      `p99 < 10 ms ${verdict(r.p99Ms < 10)} (${ms(r.p99Ms)}); zero errors ${verdict(errorsOf(r) === 0)} (${errorsOf(r)}); loop stall <= 20 ms ${r.eld ? `${verdict(r.eld.max <= 20)} (${ms(r.eld.max)})` : "n/a (no GET /v1/admin/runtime)"}\n`);
  }
  if (baseline) {
    const half = rows.length / 2;
    for (let i = 0; i < rows.length; i += 2) {
      const [b, m] = [rows[i]![1], rows[i + 1]![1]];
      process.stdout.write(`CPU per request, this tree vs baseline (${i < half ? 'stated' : 'agent'}): ${(((cpuPerReqUs(m) / cpuPerReqUs(b)) - 1) * 100).toFixed(1)}%\n`);
    }
  }
  if (Math.min(...rows.map(([, r]) => r.serverCpu), helloRes.serverCpu, echo.serverCpu) < 0.9) {
    process.stdout.write('WARNING: a server got under 90% of its core (other load on the machine?): trust the CPU/req ratio, not req/s; latency and loop delay then include time the server waited for the CPU\n');
  }
  for (const [i, a] of after.entries()) {
    process.stdout.write(`[${prepared[i]!.tree.label}] registry after the run: ${a.devices} devices (${a.devices === DEVICES ? 'ok' : 'UNEXPECTED'})${a.runtime ? `; server RSS ${(a.runtime.rssBytes / 1e6).toFixed(0)} MB` : ''}\n`);
  }
  if ([...rows.map(([, r]) => r), echo, helloRes].some((r) => errorsOf(r) !== 0) || after.some((a) => a.devices !== DEVICES)) process.exitCode = 1;

  if (cpuProf) {
    const mine = prepared[prepared.length - 1]!;
    const profDir = join(tmp, 'prof');
    const s = await startPatchwire(mine.data, { cpu: SERVER_CPU, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] });
    process.stdout.write('\n--cpu-prof run (this tree, server under node --cpu-prof, the agent\'s request):\n');
    await measure('POST /v1/check (profiled)', s.url, mine.agent, s.child.pid!, true);
    await stopChild(s.child, 15000);
    const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
    const { summariseProfile } = await import('./profile-summary.js');
    process.stdout.write(`${summariseProfile(JSON.parse(await readFile(join(profDir, files[0]!), 'utf8')))}\n`);
  }
}

runMain(async () => {
  const t0 = performance.now();
  try {
    await main();
  } finally {
    await cleanup();
    process.stdout.write(`load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}; bench finished in ${((performance.now() - t0) / 1000).toFixed(1)} s (processes stopped, temp folder removed)\n`);
  }
});
