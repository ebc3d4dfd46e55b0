/**
 * Issue 10: reconcile as a job (docs/protocol.md, "Reconcile jobs"). A real primary (`patchwire
 * serve`, pages of 10 records through the test hook PATCHWIRE_MIRROR_PAGE_RECORDS) and an approved
 * "mirror" written here (test/helpers/hostile-peer.ts) that serves two good pages, holds the
 * second until the test lets it go, then fails. The tests run in this order on one primary.
 */
import { test, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, runCli } from './helpers/cli.js';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { HostilePeer, json } from './helpers/hostile-peer.js';
import { ServerClock } from './helpers/server-clock.js';
import { tempDir } from './helpers/temp-dir.js';
import { waitFor } from './helpers/wait-for.js';
import Database from 'better-sqlite3';
import type { ReconcileJobStart, ReconcileJobView } from '../src/protocol/wire.js';

const MT = 'job-mirror-token';
const PAGE = 10;
const suite = Cleanup.forSuite();
let f: Fleet;
let peer: HostilePeer;
let clock: ServerClock;
let primaryOpts: { args: string[]; env: Record<string, string> };
/** Lets the peer answer its held second page. */
let release: () => void = () => {};
let held: Promise<void> = Promise.resolve();

const iso = () => new Date().toISOString();
const mac = (n: number) => `aa:00:00:00:0a:${n.toString(16).padStart(2, '0')}`;
const record = (n: number) => ({
  deviceId: mac(n), product: 'acme', channel: 'stable', version: '1.0.0', firstSeenAt: iso(), lastSeenAt: iso(), lastReportAt: null,
  source: peer.url, updatedAt: iso(), publicKey: createHash('sha256').update(mac(n)).digest('hex'),
});
const page = (from: number, next: string) => ({ records: Array.from({ length: PAGE }, (_, i) => record(from + i)), next });

const admin = (path: string, method = 'GET') => fetch(`${f.server.url}/v1/admin${path}`, { method, headers: { authorization: `Bearer ${f.token}` } });
const startJob = async () => {
  const res = await admin('/reconcile/jobs', 'POST');
  assert.equal(res.status, 202, await res.clone().text());
  return (await res.json()) as ReconcileJobStart;
};
const getJob = async (id: string) => {
  const res = await admin(`/reconcile/jobs/${id}`);
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { job: ReconcileJobView }).job;
};

/** The job's progress as the primary wrote it to its SQLite file (what other processes would read). */
const written = (): { view: ReconcileJobView } | undefined => {
  const db = new Database(join(f.root, 'primary', 'patchwire.db'), { readonly: true });
  try {
    const row = db.prepare("SELECT value FROM settings WHERE key = 'reconcile_job'").get() as { value: string } | undefined;
    return row && (JSON.parse(row.value) as { view: ReconcileJobView });
  } finally {
    db.close();
  }
};

before(async () => {
  clock = new ServerClock(join(await tempDir(suite, 'patchwire-job-clock-'), 'offset-ms'));
  peer = await HostilePeer.start(suite);
  primaryOpts = { args: ['--mirror-token', MT, '--reconcile-interval', '1h'], env: { ...clock.env, PATCHWIRE_MIRROR_PAGE_RECORDS: String(PAGE) } };
  f = await startFleet(suite, { token: 'job-admin', prefix: 'patchwire-e2e-reconcile-job-', server: { name: 'primary', ...primaryOpts }, releases: [['1.0.0', { README: 'one' }]] });
  const res = await fetch(`${f.server.url}/v1/mirror/announce`, {
    method: 'POST', headers: { authorization: `Bearer ${MT}`, 'content-type': 'application/json' }, body: JSON.stringify({ url: peer.url }),
  });
  assert.equal(res.status, 200);
  const ok = await runCli(['mirrors', 'approve', peer.url, ...f.admin()]);
  assert.equal(ok.code, 0, ok.stderr);
  // Page 1 at once; page 2 once the test lets it go; then the mirror breaks.
  peer.handler = async (req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (req.method === 'POST' && url.pathname === '/v1/mirror/devices') return json(res, 200, { merged: 0 });
    if (req.method === 'PUT' && url.pathname === '/v1/mirror/schedules') return json(res, 200, { changed: false });
    if (url.pathname !== '/v1/mirror/devices') return void res.writeHead(404).end();
    const after = url.searchParams.get('after');
    if (after === null) return json(res, 200, page(1, 'c1'));
    if (after === 'c1') {
      await held;
      return json(res, 200, page(1 + PAGE, 'c2'));
    }
    json(res, 500, { message: 'the mirror\'s disk is on fire' });
  };
});

describe('reconcile as a job: start, poll, join, a mirror failing mid-way', () => {
  test('a start answers at once with a running job; polls show its pages; a second start (and the CLI) join it; the mirror failing mid-way is in its errors', async () => {
    held = new Promise<void>((r) => { release = r; });
    const first = await startJob();
    assert.equal(first.joined, false);
    assert.match(first.job.id, /^[0-9a-f-]{36}$/);
    assert.equal(first.job.state, 'running', 'the start does not wait for the run');
    const { id } = first.job;
    // The run is held at the mirror's second page: the first page's 10 records are merged.
    const during = await waitFor(async () => {
      const j = await getJob(id);
      return j.mirrors[0]?.pulledPages === 1 ? j : undefined;
    }, { what: 'the job to show its first page pulled' });
    assert.deepEqual({ state: during.state, url: during.mirrors[0]!.url, phase: during.mirrors[0]!.phase, pulled: during.mirrors[0]!.pulled, errors: during.errors },
      { state: 'running', url: peer.url, phase: 'pulling', pulled: PAGE, errors: [] });
    const second = await startJob();
    assert.deepEqual([second.joined, second.job.id], [true, id], 'a start during the run joins it');
    // The CLI joins the same job and waits for it through polls (its first stderr line says so).
    const cli = spawn(process.execPath, [BIN, 'reconcile', ...f.admin()], { env: { ...process.env, PATCHWIRE_TOKEN: undefined }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    cli.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    cli.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => cli.on('close', r));
    suite.after(() => void cli.kill('SIGKILL'));
    await waitFor(() => stderr.includes(`reconcile job ${id} joined`), { what: 'the CLI to join the job', timeout: 60_000, detail: () => stderr });
    release();
    const done = await waitFor(async () => {
      const j = await getJob(id);
      return j.state !== 'running' ? j : undefined;
    }, { what: 'the job to end' });
    assert.equal(done.state, 'done', 'a failed mirror fails its part, not the job');
    const m = done.mirrors[0]!;
    assert.deepEqual([m.phase, m.pulledPages, m.pulled, m.pushedPages], ['failed', 2, 2 * PAGE, 0]);
    assert.match(m.error ?? '', /answered 500: the mirror's disk is on fire/);
    assert.deepEqual(done.errors, [{ mirror: peer.url, error: m.error }]);
    assert.ok(done.finishedAt, 'finishedAt is set');
    // The result is what POST /v1/admin/reconcile answers (a failed mirror's `pulled` is 0 there, as before jobs).
    assert.deepEqual(done.result?.mirrors.map((r) => [r.url, r.error]), [[peer.url, m.error]]);
    // The records of the two pages merged before the failure stay merged.
    const macs = (await f.devices()).map((d) => d.deviceId);
    for (let n = 1; n <= 2 * PAGE; n++) assert.ok(macs.includes(mac(n)), `${mac(n)} merged`);
    assert.equal(await exited, 1, `the CLI exits 1 for a failed mirror, as before jobs:\n${stderr}`);
    assert.match(stdout, new RegExp(`${peer.url}: FAILED: .*disk is on fire`));
  });

  test('a new start after the end is a new job; the CLI\'s --json prints the result as before', async () => {
    const r = await runCli(['reconcile', ...f.admin(), '--json']);
    assert.equal(r.code, 1, r.stderr);
    const view = JSON.parse(r.stdout) as { mirrors: Array<{ url: string; error?: string }>; pending: string[] };
    assert.deepEqual(view.mirrors.map((m) => m.url), [peer.url]);
    assert.match(view.mirrors[0]!.error ?? '', /disk is on fire/, 'the mirror resumes from its cursor c2 and fails again');
    assert.equal(r.stderr.includes('reconcile job'), false, '--json prints no progress');
  });

  test('bad and unknown job ids: 400 PW_BAD_REQUEST, 404 PW_UNKNOWN_JOB; nothing starts', async () => {
    const seen = peer.seen.length;
    const bad = await admin('/reconcile/jobs/not-a-job');
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, 'PW_BAD_REQUEST');
    const unknown = await admin('/reconcile/jobs/00000000-0000-4000-8000-000000000000');
    assert.equal(unknown.status, 404);
    const body = (await unknown.json()) as { code: string; message: string };
    assert.equal(body.code, 'PW_UNKNOWN_JOB');
    assert.match(body.message, /only the latest job is kept/);
    assert.equal(peer.seen.length, seen, 'no request reached the mirror');
  });

  test('a job whose process was killed mid-way: after a restart the poll answers it failed once its progress is 30 s old', async () => {
    held = new Promise<void>((r) => { release = r; });
    // From the start again (the mirror's cursor is reset by forgetting and re-approving it).
    assert.equal((await runCli(['mirrors', 'remove', peer.url, ...f.admin()])).code, 0);
    const res = await fetch(`${f.server.url}/v1/mirror/announce`, {
      method: 'POST', headers: { authorization: `Bearer ${MT}`, 'content-type': 'application/json' }, body: JSON.stringify({ url: peer.url }),
    });
    assert.equal(res.status, 200);
    assert.equal((await runCli(['mirrors', 'approve', peer.url, ...f.admin()])).code, 0);
    const { job } = await startJob();
    await waitFor(async () => (await getJob(job.id)).mirrors[0]?.pulledPages === 1, { what: 'the first page' });
    // Its progress is written down every 2 s: wait until a write shows the page, then kill.
    await waitFor(() => written()?.view.mirrors[0]?.pulledPages === 1, { what: 'the progress to be written with the first page' });
    await f.server.kill();
    release();
    f.server = await f.serve('primary', primaryOpts);
    // The new process never ran the job: it answers from what the killed one wrote (running while
    // recent; a restart slower than 30 s already sees it stale), and once 30 s old, failed.
    await clock.passTime(new Date(), 31_000);
    const lost = await getJob(job.id);
    assert.equal(lost.state, 'failed');
    assert.equal(lost.mirrors[0]?.pulledPages, 1, 'the progress as last written');
    assert.match(lost.error ?? '', /stopped reporting its progress .*`patchwire reconcile` starts another/);
    // A new start is a new job (the lost one holds no lock).
    const next = await startJob();
    assert.equal(next.joined, false);
    assert.notEqual(next.job.id, job.id);
  });
});
