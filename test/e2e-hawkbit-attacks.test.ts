/**
 * The hawkBit DDI under attack (the attack12 slice; docs/security.md "Mender and hawkBit devices
 * under attack"): a real `patchwire serve`, the real CLI (`publish --swu-*` signs with openssl),
 * a hostile DDI client over real HTTP on 127.0.0.1. The attacker holds the TargetToken of a device
 * it owns, or a product's GatewayToken; it does not hold the admin token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, runJson } from './helpers/cli.js';
import { startFleet, type Fleet } from './helpers/fleet.js';
import { rolloutPlacement } from '../src/protocol/rollout.js';
import { authBody, authRaw, deviceSession } from './helpers/device-session.js';
import { tempPgDatabase } from './helpers/postgres.js';
import type { DeviceDetail } from '../src/protocol/wire.js';

const TOKEN = 'e2e-hawkbit-attacks-token';
const STORES = (process.env.PATCHWIRE_STORES ?? 'sqlite,postgres').split(',');
const mac = (i: number): string => `02:00:00:12:d${(i >> 8) & 15}:${(i & 255).toString(16).padStart(2, '0')}`;

function hasOpenssl(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v openssl'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const skip = hasOpenssl() ? false : 'needs openssl (apt-get install -y openssl)';

interface Answer { status: number; text: string; code?: string; message?: string; json: () => Record<string, unknown> }

async function ddi(f: Fleet, path: string, authorization: string | undefined, o: { method?: string; body?: unknown } = {}): Promise<Answer> {
  const res = await fetch(`${f.server.url}${path}`, {
    method: o.method ?? 'GET',
    headers: { ...(authorization ? { authorization } : {}), ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(o.body !== undefined ? { body: typeof o.body === 'string' ? o.body : JSON.stringify(o.body) } : {}),
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try { parsed = JSON.parse(text) as Record<string, unknown>; } catch { /* not JSON */ }
  return { status: res.status, text, code: parsed.code as string | undefined, message: parsed.message as string | undefined, json: () => parsed };
}

const feedback = (execution: string, finished: string, id?: number) => ({ ...(id !== undefined ? { id } : {}), status: { execution, result: { finished } }, details: ['attack'] });
const show = (f: Fleet, m: string, product = 'acme'): Promise<DeviceDetail> => runJson<DeviceDetail>(['devices', 'show', m, ...f.admin(), '--product', product, '--json']);
const history = async (f: Fleet, m: string, product = 'acme'): Promise<string[]> => (await show(f, m, product)).history.map((h) => `${h.event} ${h.version}`);

/** The vendor's .swu signing certificate and key, made with openssl; the `publish --swu-*` flags for them. */
async function vendorSwu(f: Fleet): Promise<string[]> {
  const certs = join(f.root, 'certs');
  await mkdir(certs, { recursive: true });
  const cert = join(certs, 'vendor.cert.pem');
  const key = join(certs, 'vendor.key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=vendor'], { stdio: 'ignore' });
  return ['--swu-cert', cert, '--swu-key', key, '--swu-dest', '/opt/acme', '--json'];
}

test('DDI under attack: tokens of another device, product or tenant; path tricks in tenants and controller ids; feedback on actions never offered; floods and oversize configData; nothing recorded by a refused call', { skip, timeout: 300_000 }, async (t) => {
  const f = await startFleet(t, { token: TOKEN, prefix: 'patchwire-hawkbit-attacks-', server: { args: ['--enrol-limit', '5/1m'] } });
  const swu = await vendorSwu(f);
  const publish = async (version: string, product = 'acme', extra: string[] = []): Promise<number> => {
    const p = await f.publish(version, { VERSION: version }, { product, extra: [...swu, ...extra] });
    assert.equal(p.code, 0, p.stderr);
    return (JSON.parse(p.stdout) as { swu: { actionId: number } }).swu.actionId;
  };
  await f.createProduct({ product: 'beta' });
  const acme1 = await publish('1.0.0');
  const beta1 = await publish('1.0.0', 'beta');

  // A device outside the 1% first phase of acme 1.1.0 (placement is public arithmetic).
  const A = Array.from({ length: 50 }, (_, i) => mac(i + 1)).find((m) => rolloutPlacement(m, 'acme', '1.1.0') >= 2)!;
  const B = mac(100);
  const token = async (m: string, product = 'acme') => (await runCli(['devices', 'token', ...f.admin(), '--product', product, '--device', m])).stdout.trim();
  const ta = `TargetToken ${await token(A)}`;
  const tb = `TargetToken ${await token(B)}`;
  const gwBeta = `GatewayToken ${(await runCli(['product', 'gateway-token', ...f.admin(), '--product', 'beta'])).stdout.trim()}`;
  const base = (m: string, tenant = 'acme') => `/${tenant}/controller/v1/${m}`;
  assert.equal((await ddi(f, base(A), ta)).status, 200);

  // Tokens: A's for B, A's under tenant beta, beta's gateway under acme (which has none), a gateway
  // token as a TargetToken and the other way round, a token with another's appended, a long one.
  for (const [what, path, auth] of [
    ['A\'s TargetToken for B', base(B), ta],
    ['B\'s TargetToken for A', base(A), tb],
    ['A\'s TargetToken under tenant beta', base(A, 'beta'), ta],
    ['beta\'s GatewayToken under tenant acme', base(A), gwBeta],
    ['beta\'s GatewayToken for a new device under acme', base(mac(200)), gwBeta],
    ['a GatewayToken sent as TargetToken', base(mac(201), 'beta'), gwBeta.replace('GatewayToken', 'TargetToken')],
    ['a TargetToken sent as GatewayToken', base(A), ta.replace('TargetToken', 'GatewayToken')],
    ['A\'s token with a suffix', base(A), `${ta}x`],
    ['A\'s token cut short', base(A), ta.slice(0, -1)],
    ['two tokens', base(A), `${ta} ${ta}`],
    ['a 600-character token', base(A), `TargetToken ${'x'.repeat(600)}`],
  ] as Array<[string, string, string]>) {
    const r = await ddi(f, path, auth);
    assert.equal(r.status, 401, `${what}: ${r.status} ${r.text}`);
    assert.equal(r.code, 'PW_DDI_TOKEN', what);
  }
  for (const [what, path] of [['deploymentBase', `${base(B)}/deploymentBase/${acme1}`], ['feedback', `${base(B)}/deploymentBase/${acme1}/feedback`], ['configData', `${base(B)}/configData`]]) {
    const r = await ddi(f, path!, ta, what === 'deploymentBase' ? {} : { method: what === 'configData' ? 'PUT' : 'POST', body: what === 'configData' ? { data: { a: 'b' } } : feedback('closed', 'success') });
    assert.equal(r.status, 401, `${what} of B with A's token: ${r.text}`);
  }
  assert.deepEqual(await history(f, B), [], 'nothing recorded for B');
  assert.equal((await runCli(['devices', 'show', mac(200), ...f.admin(), '--product', 'acme'])).code !== 0, true, 'no record for the foreign gateway\'s device');

  // Tenants that are not products, controller ids with path tricks: refused, nothing created.
  for (const path of ['/nope/controller/v1/' + A, '/ACME/controller/v1/' + A, '/%2E%2E/controller/v1/' + A, '/acme%2F..%2Fbeta/controller/v1/' + A]) {
    const r = await ddi(f, path, ta);
    assert.equal(r.status, 404, `${path}: ${r.status} ${r.text}`);
  }
  for (const id of ['..%2F..%2Fv1%2Fadmin', `${A}%00`, `${A}%2F..`, 'x'.repeat(90), '%C3%BCnicode', '02:00:00:12:00', '02:00:00:12:00:01:02']) {
    const r = await ddi(f, base(id, 'beta'), gwBeta);
    assert.equal(r.status, 400, `${id}: ${r.status} ${r.text}`);
    assert.match(r.message ?? '', /is not a MAC address/);
  }
  assert.equal((await f.devices()).filter((d) => d.product === 'beta').length, 0, 'no beta device was enrolled');

  // Actions: another product's, never issued, out of range, not a number; the download of another product's action.
  for (const id of [String(beta1), '0', '999999', '2147483648', '1e3', '-1', '0x1', `${acme1}.0`]) {
    const r = await ddi(f, `${base(A)}/deploymentBase/${id}`, ta);
    assert.equal(r.status, 404, `action ${id}: ${r.status} ${r.text}`);
  }
  assert.equal((await ddi(f, `${base(A)}/softwaremodules/${beta1}/artifacts/beta-1.0.0.swu`, ta)).status, 404);
  assert.equal((await ddi(f, `${base(A)}/softwaremodules/${acme1}/artifacts/..%2F..%2Fbeta-1.0.0.swu`, ta)).status, 404);
  assert.equal((await ddi(f, `${base(A)}/softwaremodules/${acme1}/artifacts/acme-1.0.0.swu`, ta)).status, 200, 'its own offered .swu');
  const fbBeta = await ddi(f, `${base(A)}/deploymentBase/${beta1}/feedback`, ta, { method: 'POST', body: feedback('closed', 'success') });
  assert.equal(fbBeta.status, 404, fbBeta.text);
  const fbMismatch = await ddi(f, `${base(A)}/deploymentBase/${acme1}/feedback`, ta, { method: 'POST', body: feedback('closed', 'success', beta1) });
  assert.equal(fbMismatch.status, 400, 'the body names another action');
  assert.deepEqual(await history(f, A), []);

  // A staged release its rollout never offered to A: feedback on its action is refused (the native
  // rule, PW_NOT_OFFERED), so A cannot halt the rollout nor claim it applied it.
  await ddi(f, `${base(A)}/deploymentBase/${acme1}/feedback`, ta, { method: 'POST', body: feedback('closed', 'success') });
  assert.equal((await show(f, A)).device.version, '1.0.0');
  const acme11 = await publish('1.1.0', 'acme', ['--rollout', '1%,100%', '--every', '1h', '--halt-at', '10%', '--min-devices', '1']);
  assert.equal((await ddi(f, base(A), ta)).json()._links && ((await ddi(f, base(A), ta)).json()._links as Record<string, unknown>).deploymentBase, undefined, 'not offered');
  assert.equal((await ddi(f, `${base(A)}/deploymentBase/${acme11}`, ta)).status, 404);
  const before = await history(f, A);
  for (const [execution, finished] of [['closed', 'failure'], ['closed', 'success'], ['proceeding', 'none']]) {
    const r = await ddi(f, `${base(A)}/deploymentBase/${acme11}/feedback`, ta, { method: 'POST', body: feedback(execution!, finished!) });
    assert.equal(r.status, 409, `${execution}/${finished}: ${r.status} ${r.text}`);
    assert.equal(r.code, 'PW_NOT_OFFERED');
  }
  assert.deepEqual(await history(f, A), before, 'nothing recorded');
  assert.equal((await show(f, A)).device.version, '1.0.0');
  const rollouts = (await f.adminGet<{ rollouts: Array<{ state: string }> }>('/rollouts?product=acme')).rollouts;
  assert.equal(rollouts[0]!.state, 'active', 'not halted (--min-devices 1)');

  // A feedback flood: 300 `proceeding` on the offered action of B, then repeated closes: each
  // repeat records nothing more. (One after another: repeats sent at the same moment can each read
  // the history before the other writes, and record a duplicate, bounded by the 200 kept per device.)
  const b1 = (await ddi(f, base(B), tb)).json()._links as Record<string, { href: string }>;
  assert.ok(b1.deploymentBase);
  for (let i = 0; i < 300; i++) await ddi(f, `${base(B)}/deploymentBase/${acme1}/feedback`, tb, { method: 'POST', body: feedback('proceeding', 'none') });
  for (let i = 0; i < 20; i++) await ddi(f, `${base(B)}/deploymentBase/${acme1}/feedback`, tb, { method: 'POST', body: feedback('closed', 'success') });
  assert.deepEqual(await history(f, B), ['applied 1.0.0', 'installing 1.0.0']);

  // configData: too many attributes, too long a value or name, not strings, prototype keys, nested, oversize.
  const cfg = (body: unknown) => ddi(f, `${base(B)}/configData`, tb, { method: 'PUT', body });
  for (const [what, body, code] of [
    ['65 attributes', { data: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }, 400],
    ['a 257-character value', { data: { board: 'v'.repeat(257) } }, 400],
    ['a 65-character name', { data: { ['k'.repeat(65)]: 'v' } }, 400],
    ['a number', { data: { board: 1 } }, 400],
    ['an array', { data: ['a'] }, 400],
    ['no data', {}, 400],
    ['__proto__', '{"data":{"__proto__":{"polluted":"yes"}}}', 400],
    ['constructor.prototype', '{"data":{"constructor":{"prototype":{"polluted":"yes"}}}}', 400],
    ['nested 10,000 deep', `{"data":${'{"a":'.repeat(10_000)}"v"${'}'.repeat(10_000)}}`, 400],
    ['70 KB', { data: { board: 'v'.repeat(70_000) } }, 413],
  ] as Array<[string, unknown, number]>) {
    const r = await cfg(body);
    assert.equal(r.status, code, `${what}: ${r.status} ${r.text.slice(0, 200)}`);
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.ok(((await ddi(f, base(B), tb)).json()._links as Record<string, unknown>).configData, 'no refused configData was kept (its link is still there)');
  assert.equal((await cfg({ data: { board: 'board' } })).status, 200);

  // Across protocols: an agent's key for B's MAC waits as an identity conflict (B goes on); the
  // gateway token does not speak for a device bound to an agent's key.
  const takeover = await authRaw(f.server.url, authBody(B, 'acme'));
  assert.equal(takeover.status, 403, JSON.stringify(takeover.body));
  assert.equal(takeover.body.code, 'PW_DEVICE_PENDING');
  assert.equal((await ddi(f, base(B), tb)).status, 200, 'B keeps its binding');
  await deviceSession(f.server.url, mac(400), 'beta');
  const gwForAgent = await ddi(f, base(mac(400), 'beta'), gwBeta);
  assert.equal(gwForAgent.status, 401, gwForAgent.text);
  assert.match(gwForAgent.message ?? '', /bound to a patchwire agent's key/);

  // Revoked: a rejected device's TargetToken is 403, a removed device's 401; each changes nothing.
  assert.equal((await runCli(['devices', 'reject', A, ...f.admin(), '--product', 'acme'])).code, 0);
  const rejected = await ddi(f, `${base(A)}/deploymentBase/${acme1}/feedback`, ta, { method: 'POST', body: feedback('closed', 'failure') });
  assert.equal(rejected.status, 403, rejected.text);
  assert.equal(rejected.code, 'PW_DEVICE_REJECTED');
  assert.equal((await runCli(['devices', 'remove', B, ...f.admin(), '--product', 'acme'])).code, 0);
  const removed = await ddi(f, base(B), tb);
  assert.equal(removed.status, 401, removed.text);
  assert.equal((await runCli(['devices', 'show', B, ...f.admin(), '--product', 'acme'])).code !== 0, true, 'the removed device stays removed');

  // A gateway token's enrolment flood: distinct MACs through beta's token meet --enrol-limit 5/1m
  // (the agent's enrolment and its conflicting key above took two of the five).
  const codes: number[] = [];
  for (let i = 0; i < 8; i++) codes.push((await ddi(f, base(mac(300 + i), 'beta'), gwBeta)).status);
  assert.deepEqual(codes, [200, 200, 200, 429, 429, 429, 429, 429]);
  assert.equal((await f.devices()).filter((d) => d.product === 'beta').length, 4, 'three gateway devices and the agent');

  // Left as designed (docs/security.md): the product's GatewayToken speaks for a device that has a TargetToken too.
  const C = mac(500);
  const tc = `TargetToken ${await token(C)}`;
  const gwAcme = `GatewayToken ${(await runCli(['product', 'gateway-token', ...f.admin(), '--product', 'acme'])).stdout.trim()}`;
  assert.equal((await ddi(f, base(C), tc)).status, 200);
  assert.equal((await ddi(f, base(C), gwAcme)).status, 200, 'the gateway token speaks for a TargetToken device');
});

for (const store of STORES) {
  test(`a NUL in SWUpdate's feedback details is kept as U+FFFD, not a 500 (${store})`, { skip, timeout: 300_000 }, async (t) => {
    const args = store === 'postgres' ? ['--db', await tempPgDatabase(t)] : [];
    const f = await startFleet(t, { token: TOKEN, prefix: `patchwire-hawkbit-attacks-nul-${store}-`, server: { args } });
    const p = await f.publish('1.0.0', { VERSION: '1.0.0' }, { extra: await vendorSwu(f) });
    assert.equal(p.code, 0, p.stderr);
    const action = (JSON.parse(p.stdout) as { swu: { actionId: number } }).swu.actionId;
    const m = mac(700);
    const tt = `TargetToken ${(await runCli(['devices', 'token', ...f.admin(), '--product', 'acme', '--device', m])).stdout.trim()}`;
    // PostgreSQL text cannot hold a NUL: this was a 500 there (SQLite stored it).
    const r = await ddi(f, `/acme/controller/v1/${m}/deploymentBase/${action}/feedback`, tt, { method: 'POST', body: { status: { execution: 'closed', result: { finished: 'failure' } }, details: ['binary\u0000output'] } });
    assert.equal(r.status, 200, r.text);
    const failed = (await show(f, m)).history[0]!;
    assert.equal(failed.event, 'failed');
    assert.equal(failed.error, 'update to 1.0.0 failed: binary\ufffdoutput');
    // configData is kept as JSON text (a NUL is escaped there): held on both stores.
    const cfg = await ddi(f, `/acme/controller/v1/${m}/configData`, tt, { method: 'PUT', body: { data: { 'na\u0000me': 'val\u0000ue' } } });
    assert.equal(cfg.status, 200, cfg.text);
    assert.equal(((await ddi(f, `/acme/controller/v1/${m}`, tt)).json()._links as Record<string, unknown>).configData, undefined, 'kept');
  });
}
