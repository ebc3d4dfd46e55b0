/**
 * Bad input against a real `patchwire serve` process (docs/design.md section 8, docs/errors.md): every
 * refusal answers the documented status and code with a message that says what to do, and
 * changes nothing. "Nothing" is checked each time: the product's releases, its current targets
 * version, the moved URL, the device list, the products list and the bytes under the data
 * folder's artifacts/ (staging in artifacts/tmp must be empty again too).
 *
 * One product (acme) is created and 1.0.0 published with the CLI; the bad requests are built by
 * hand (FormData, the real publisher key through nextTargets, raw tar headers).
 */
import { test, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { access, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, type ServerProcess } from './helpers/cli.js';
import { writeTree, snapshotDir } from './helpers/files.js';
import { Cleanup } from './helpers/cleanup.js';
import { startFleet, type Fleet, type ProductInfo } from './helpers/fleet.js';
import { DeviceSessions } from './helpers/device-session.js';
import { assertError, multipartBody, rawTarGz, releaseTarget, sha256, signNext, type RawEntry } from './helpers/requests.js';
import { generateKeyPair, readKeyFile, type KeyPair } from '../src/tuf/keys.js';
import { createInitialMetadata, type SignedJson } from '../src/tuf/publisher.js';

const TOKEN = 'server-input-admin-token';
const DEVICE = 'aa:bb:cc:11:00:01';
const PROBE = 'aa:bb:cc:11:00:99';
const MiB = 1024 * 1024;

const suite = Cleanup.forSuite();
let f: Fleet;
let root: string;
let dataDir: string;
let server: ServerProcess;
let keyFile: string;
let publisher: KeyPair;

// ---------------------------------------------------------------------------------------------
// Plumbing
// ---------------------------------------------------------------------------------------------

const auth = { authorization: `Bearer ${TOKEN}` };

async function http(method: string, path: string, init: { headers?: Record<string, string>; body?: string | Buffer } = {}) {
  const res = await fetch(server.url + path, { method, headers: init.headers, body: init.body as BodyInit | undefined });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body, text: body.toString('utf8') };
}

const sessions = new DeviceSessions();

/**
 * POSTs JSON; a check or report of a device (a MAC, a product and a channel in the body) goes with
 * that device's token. A body without them gets none: schema errors come before the token check.
 */
async function postJson(path: string, body: unknown, headers: Record<string, string> = {}) {
  const b = body as { deviceId?: unknown; product?: unknown; channel?: unknown } | null;
  const device = (path === '/v1/check' || path === '/v1/report') && typeof b === 'object' && b !== null && typeof b.deviceId === 'string' && typeof b.product === 'string' && typeof b.channel === 'string';
  const authz = device && !headers.authorization ? await sessions.headers(server.url, b.deviceId as string, b.product as string) : {};
  return http('POST', path, { headers: { 'content-type': 'application/json', ...authz, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

const adminJson = <T>(path: string) => http('GET', `/v1/admin${path}`, { headers: auth }).then((r) => {
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text) as T;
});

const product = () => adminJson<ProductInfo>('/products/acme');

async function artifactFiles(): Promise<Array<[string, string]>> {
  const snap = await snapshotDir(join(dataDir, 'artifacts'));
  return [...snap.entries()].filter(([p]) => !p.startsWith(join(dataDir, 'artifacts', 'tmp'))).sort();
}

async function stagingFiles(): Promise<string[]> {
  return readdir(join(dataDir, 'artifacts', 'tmp'));
}

/** The state every refused request must leave alone (the probe device is ours to poke). */
async function state() {
  const p = await product();
  // postJson authenticates a device before sending its check, and an enrolment records the device
  // (first seen = last seen, nothing applied): those records are the test's own sessions. The
  // refused check itself must record nothing (a sighting would move lastSeenAt, a report the version).
  type Row = { deviceId: string; version: string | null; firstSeenAt: string; lastSeenAt: string; lastReportAt: string | null };
  const onlyEnrolled = (d: Row) => sessions.enrolled.has(d.deviceId) && d.version === null && d.lastReportAt === null && d.firstSeenAt === d.lastSeenAt;
  const devices = (await adminJson<{ devices: Row[] }>('/devices')).devices.filter((d) => d.deviceId !== PROBE && !onlyEnrolled(d));
  const probe = await postJson('/v1/check', { deviceId: PROBE, product: 'acme', channel: 'stable', version: null });
  assert.equal(probe.status, 200, probe.text);
  const { latest, schedule, moved } = JSON.parse(probe.text) as Record<string, unknown>;
  return {
    releases: p.releases,
    targetsVersion: p.targets.signed.version,
    moved: p.moved,
    devices,
    products: await adminJson<{ products: string[] }>('/products'),
    check: { latest, schedule, moved },
    artifacts: await artifactFiles(),
  };
}

/** Runs `request`, then asserts it was refused as expected and that nothing changed. */
async function refused(
  request: () => Promise<{ status: number; text: string }>,
  expect: { status: number; code: string; message?: RegExp },
): Promise<void> {
  await refusedWith(request, expect);
}

/** As refused(), returning the error body for further checks. */
async function refusedWith(
  request: () => Promise<{ status: number; text: string }>,
  expect: { status: number; code: string; message?: RegExp },
) {
  const before = await state();
  const res = await request();
  const body = assertError(res.status, res.text, expect);
  assert.deepEqual(await state(), before, `refused request (${body.code}: ${body.message}) changed something`);
  assert.deepEqual(await stagingFiles(), [], 'a refused upload left a staged file behind');
  return body;
}

// ---- publish requests built by hand ----

/** A plain, valid archive of a tree and its signed custom numbers. */
function plainArchive(text = 'hello'): { archive: Buffer; treeBytes: number; treeFiles: number } {
  return { archive: rawTarGz([{ name: 'README', type: 'file', content: text }]), treeBytes: Buffer.byteLength(text), treeFiles: 1 };
}

async function postRelease(parts: Array<[string, string | Buffer, string?]>, headers: Record<string, string> = {}) {
  const { body, contentType } = await multipartBody(parts);
  return http('POST', '/v1/admin/products/acme/releases', { headers: { ...auth, 'content-type': contentType, ...headers }, body });
}

/** Signs `archive` as stable/<version> with the real key (overrides let a test bend one thing) and uploads `upload ?? archive`. */
async function publishRaw(opts: {
  version: string;
  archive: Buffer;
  treeBytes: number;
  treeFiles: number;
  upload?: Buffer;
  metadataVersion?: string;
  custom?: Record<string, unknown>;
  extra?: Record<string, ReturnType<typeof releaseTarget>>;
  signWith?: KeyPair;
  transformTargets?: (t: SignedJson) => SignedJson;
}) {
  const current = (await product()).targets;
  const path = `stable/${opts.version}.tar.gz`;
  const target = releaseTarget(opts.archive, { product: 'acme', channel: 'stable', version: opts.version, treeBytes: opts.treeBytes, treeFiles: opts.treeFiles, ...opts.custom });
  let targets = signNext(current, publisher, { [path]: target, ...opts.extra }, opts.signWith);
  if (opts.transformTargets) targets = opts.transformTargets(targets);
  return postRelease([
    ['metadata', JSON.stringify({ channel: 'stable', version: opts.metadataVersion ?? opts.version, targets })],
    ['archive', opts.upload ?? opts.archive, 'release.tar.gz'],
  ]);
}

// ---------------------------------------------------------------------------------------------
// Setup: a server, a product made with the CLI, release 1.0.0, one device on it
// ---------------------------------------------------------------------------------------------

before(async () => {
  f = await startFleet(suite, {
    token: TOKEN,
    prefix: 'patchwire-input-',
    server: { name: 'data' },
    releases: [['1.0.0', { README: 'version one', 'bin/app': '#!/bin/sh\necho 1\n' }]],
  });
  ({ root, server, key: keyFile } = f);
  dataDir = join(root, 'data');
  publisher = await readKeyFile(keyFile);
  let res = await postJson('/v1/check', { deviceId: DEVICE, product: 'acme', channel: 'stable', version: null });
  assert.equal(res.status, 200, res.text);
  res = await postJson('/v1/report', { deviceId: DEVICE, product: 'acme', channel: 'stable', event: 'applied', version: '1.0.0', previousVersion: null });
  assert.equal(res.status, 200, res.text);
});


// ---------------------------------------------------------------------------------------------
// POST /v1/check
// ---------------------------------------------------------------------------------------------

describe('POST /v1/check', () => {
  const valid = { deviceId: 'aa:bb:cc:11:22:33', product: 'acme', channel: 'stable', version: '1.0.0' };
  const check = (body: unknown) => () => postJson('/v1/check', body);

  test('malformed JSON: 400 PW_BAD_REQUEST', () =>
    refused(check('{"deviceId": "aa:bb:cc:11:22:33", '), { status: 400, code: 'PW_BAD_REQUEST', message: /not valid JSON.*send a JSON object/ }));

  test('empty body: 400 PW_BAD_REQUEST', () =>
    refused(check(''), { status: 400, code: 'PW_BAD_REQUEST', message: /JSON/ }));

  test('a JSON array: 400 PW_BAD_REQUEST', () =>
    refused(check([valid]), { status: 400, code: 'PW_BAD_REQUEST', message: /object.*docs\/protocol\.md/ }));

  test('missing fields: 400 PW_BAD_REQUEST naming the field', async () => {
    await refused(check({ deviceId: valid.deviceId, product: 'acme', version: '1.0.0' }), { status: 400, code: 'PW_BAD_REQUEST', message: /channel/ });
    await refused(check({ product: 'acme', channel: 'stable', version: '1.0.0' }), { status: 400, code: 'PW_BAD_REQUEST', message: /deviceId/ });
  });

  test('without `version` the applied version recorded in the registry decides; a stated version wins', async () => {
    const deviceId = 'aa:bb:cc:11:22:99';
    const first = JSON.parse((await postJson('/v1/check', { deviceId, product: 'acme', channel: 'stable' })).text) as { status: string };
    assert.equal(first.status, 'update', 'an unknown device has nothing recorded');
    const rep = await postJson('/v1/report', { deviceId, product: 'acme', channel: 'stable', event: 'applied', version: '1.0.0', previousVersion: null });
    assert.equal(rep.status, 200, rep.text);
    const recorded = JSON.parse((await postJson('/v1/check', { deviceId, product: 'acme', channel: 'stable' })).text) as { status: string };
    assert.equal(recorded.status, 'up-to-date', 'the registry says 1.0.0, the latest');
    // A re-installed copy on the same machine states that it runs nothing: it gets the release.
    const stated = JSON.parse((await postJson('/v1/check', { deviceId, product: 'acme', channel: 'stable', version: null })).text) as { status: string };
    assert.equal(stated.status, 'update');
  });

  test('wrong type (number for product): 400 PW_BAD_REQUEST naming the field', () =>
    refused(check({ ...valid, product: 42 }), { status: 400, code: 'PW_BAD_REQUEST', message: /product/ }));

  test('a deviceId that is not a MAC: 400 PW_BAD_REQUEST', () =>
    refused(check({ ...valid, deviceId: 'my-laptop' }), { status: 400, code: 'PW_BAD_REQUEST', message: /'my-laptop' is not a MAC address.*aa:bb:cc:dd:ee:ff/ }));

  test('an all-zero MAC: 400 PW_BAD_REQUEST', async () => {
    for (const deviceId of ['00:00:00:00:00:00', '000000000000', '00-00-00-00-00-00']) {
      await refused(check({ ...valid, deviceId }), { status: 400, code: 'PW_BAD_REQUEST', message: /not a MAC address/ });
    }
  });

  test('a MAC with mixed separators or of the wrong length: 400 PW_BAD_REQUEST', async () => {
    for (const deviceId of ['aa:bb-cc:dd:ee:ff', 'aa:bb:cc:dd:ee', 'aa:bb:cc:dd:ee:ff:00', 'gg:bb:cc:dd:ee:ff']) {
      await refused(check({ ...valid, deviceId }), { status: 400, code: 'PW_BAD_REQUEST', message: /not a MAC address/ });
    }
  });

  test('a non-semver version: 400 PW_BAD_REQUEST', async () => {
    for (const version of ['1.0', 'v1.0.0', 'latest', '01.0.0']) {
      await refused(check({ ...valid, version }), { status: 400, code: 'PW_BAD_REQUEST', message: /not a semver version such as 1\.2\.3/ });
    }
  });

  test('an unknown product: 404 PW_UNKNOWN_PRODUCT', () =>
    refused(check({ ...valid, product: 'nope' }), { status: 404, code: 'PW_UNKNOWN_PRODUCT', message: /unknown product 'nope'.*patchwire product create/ }));

  test('a product name with ../: 400 PW_BAD_REQUEST', async () => {
    for (const p of ['../acme', 'acme/../acme', '..', 'ACME', '']) {
      await refused(check({ ...valid, product: p }), { status: 400, code: 'PW_BAD_REQUEST', message: /product/ });
    }
  });

  test('a channel that is not a name: 400 PW_BAD_REQUEST', () =>
    refused(check({ ...valid, channel: 'stable/../beta' }), { status: 400, code: 'PW_BAD_REQUEST', message: /channel/ }));

  test('a body over 1 MiB: 413 PW_PAYLOAD_TOO_LARGE', () =>
    refused(check({ ...valid, padding: 'x'.repeat(MiB + 10) }), { status: 413, code: 'PW_PAYLOAD_TOO_LARGE', message: /smaller/ }));

  test('a non-JSON content type (application/xml): 415 PW_BAD_REQUEST saying to send JSON', () =>
    refused(() => http('POST', '/v1/check', { headers: { 'content-type': 'application/xml' }, body: JSON.stringify(valid) }),
      { status: 415, code: 'PW_BAD_REQUEST', message: /application\/json/ }));

  test('a JSON object sent as text/plain: 415 PW_BAD_REQUEST saying to send application/json', () =>
    // docs/errors.md: 415 for a wrong content type. (An answer "body must be object" to a body
    // that is an object does not tell the device what to fix.)
    refused(() => http('POST', '/v1/check', { headers: { 'content-type': 'text/plain' }, body: JSON.stringify(valid) }),
      { status: 415, code: 'PW_BAD_REQUEST', message: /application\/json/ }));

  test('a valid check with an upper-case dashed MAC registers the normalised MAC', async () => {
    const res = await postJson('/v1/check', { ...valid, deviceId: 'AA-BB-CC-11-22-44', version: null });
    assert.equal(res.status, 200, res.text);
    const answer = JSON.parse(res.text) as { status: string; latest: string };
    assert.equal(answer.status, 'update');
    assert.equal(answer.latest, '1.0.0');
    const { devices } = await adminJson<{ devices: Array<{ deviceId: string; product: string; channel: string }> }>('/devices');
    const mine = devices.filter((d) => d.deviceId.replace(/[:-]/g, '').toLowerCase() === 'aabbcc112244');
    assert.deepEqual(mine.map((d) => d.deviceId), ['aa:bb:cc:11:22:44'], 'exactly one record, under the lower-case colon form');
    assert.equal(mine[0]!.product, 'acme');
  });
});

// ---------------------------------------------------------------------------------------------
// POST /v1/report
// ---------------------------------------------------------------------------------------------

describe('POST /v1/report', () => {
  const base = { deviceId: DEVICE, product: 'acme', channel: 'stable', previousVersion: '1.0.0' };
  const report = (body: unknown) => () => postJson('/v1/report', body);
  const deviceVersion = async () => (await adminJson<{ devices: Array<{ deviceId: string; version: string | null }> }>('/devices')).devices.find((d) => d.deviceId === DEVICE)?.version;

  test('an unknown event: 400 PW_BAD_REQUEST', () =>
    refused(report({ ...base, event: 'installed', version: '1.0.0' }), { status: 400, code: 'PW_BAD_REQUEST', message: /event/ }));

  test('applied of a version never published: 404 PW_UNKNOWN_RELEASE, the device keeps its version', async () => {
    assert.equal(await deviceVersion(), '1.0.0');
    await refused(report({ ...base, event: 'applied', version: '9.9.9' }), { status: 404, code: 'PW_UNKNOWN_RELEASE', message: /no release 9\.9\.9.*report a version the server published/ });
    await refused(report({ ...base, event: 'rolled-back', version: '0.0.1' }), { status: 404, code: 'PW_UNKNOWN_RELEASE' });
    assert.equal(await deviceVersion(), '1.0.0');
    const history = await adminJson<unknown[]>(`/products/acme/devices/${DEVICE}/reports`);
    assert.equal(history.length, 1, 'a refused report is not recorded in the history');
  });

  test('applied without a version: 400 PW_BAD_REQUEST', async () => {
    await refused(report({ ...base, event: 'applied', version: null }), { status: 400, code: 'PW_BAD_REQUEST', message: /needs the version/ });
    await refused(report({ ...base, event: 'applied' }), { status: 400, code: 'PW_BAD_REQUEST', message: /version/ });
    assert.equal(await deviceVersion(), '1.0.0');
  });

  test('a report for an unknown product: 404 PW_UNKNOWN_PRODUCT', () =>
    refused(report({ ...base, product: 'nope', event: 'applied', version: '1.0.0' }), { status: 404, code: 'PW_UNKNOWN_PRODUCT' }));

  test('a detail over 1,000 characters: 400 PW_BAD_REQUEST', () =>
    refused(report({ ...base, event: 'failed', version: '1.0.0', detail: 'x'.repeat(1001) }), { status: 400, code: 'PW_BAD_REQUEST', message: /detail/ }));
});

// ---------------------------------------------------------------------------------------------
// POST /v1/admin/products/:product/releases
// ---------------------------------------------------------------------------------------------

describe('POST /v1/admin/products/acme/releases', () => {
  test('a version not higher than the latest (server-side check): 409 PW_VERSION_NOT_HIGHER', async () => {
    for (const version of ['1.0.0', '0.9.0', '1.0.0-rc.1']) {
      const a = plainArchive(`v${version}`);
      await refused(() => publishRaw({ version, ...a }), { status: 409, code: 'PW_VERSION_NOT_HIGHER', message: /not higher than 1\.0\.0.*publish a higher version/ });
    }
  });

  test('archive bytes differing from the signed target: 400 PW_ARTIFACT_MISMATCH', async () => {
    const a = plainArchive('signed');
    const other = plainArchive('swapped').archive;
    await refused(() => publishRaw({ version: '1.1.0', ...a, upload: other }), { status: 400, code: 'PW_ARTIFACT_MISMATCH', message: /upload the file you signed/ });
    // Same length, one byte changed.
    const flipped = Buffer.from(a.archive);
    flipped[flipped.length - 5] ^= 0xff;
    await refused(() => publishRaw({ version: '1.1.0', ...a, upload: flipped }), { status: 400, code: 'PW_ARTIFACT_MISMATCH' });
  });

  test('targets signed by a different key: 400 PW_BAD_SIGNATURE', () =>
    refused(() => publishRaw({ version: '1.1.0', ...plainArchive(), signWith: generateKeyPair() }), { status: 400, code: 'PW_BAD_SIGNATURE', message: /publisher key/ }));

  test('targets with a signature removed or tampered after signing: 400 PW_BAD_SIGNATURE', async () => {
    await refused(() => publishRaw({ version: '1.1.0', ...plainArchive(), transformTargets: (t) => ({ ...t, signatures: [] }) }), { status: 400, code: 'PW_BAD_SIGNATURE' });
    const tamper = (t: SignedJson) => {
      const copy = JSON.parse(JSON.stringify(t)) as { signed: { targets: Record<string, { length: number }> } };
      copy.signed.targets['stable/1.1.0.tar.gz']!.length += 1;
      return copy as unknown as SignedJson;
    };
    await refused(() => publishRaw({ version: '1.1.0', ...plainArchive(), transformTargets: tamper }), { status: 400, code: 'PW_BAD_SIGNATURE' });
  });

  test('targets with the wrong version number: 409 PW_METADATA_VERSION', async () => {
    const current = (await product()).targets;
    const skip = signNext(current, publisher, {}); // current + 1, never uploaded
    const a = plainArchive();
    const targets = signNext(skip, publisher, { 'stable/1.1.0.tar.gz': releaseTarget(a.archive, { product: 'acme', channel: 'stable', version: '1.1.0', treeBytes: a.treeBytes, treeFiles: a.treeFiles }) });
    await refused(() => postRelease([['metadata', JSON.stringify({ channel: 'stable', version: '1.1.0', targets })], ['archive', a.archive]]),
      { status: 409, code: 'PW_METADATA_VERSION', message: /expected \d+.*run the publish again/ });
    // Replaying the current targets (same version) is refused the same way.
    await refused(() => postRelease([['metadata', JSON.stringify({ channel: 'stable', version: '1.1.0', targets: current })], ['archive', a.archive]]),
      { status: 409, code: 'PW_METADATA_VERSION' });
  });

  test('targets that also add a target not uploaded: 400 PW_BAD_METADATA', () => {
    const a = plainArchive();
    const extra = { 'stable/9.0.0.tar.gz': releaseTarget(Buffer.from('not uploaded'), { product: 'acme', channel: 'stable', version: '9.0.0', treeBytes: 1, treeFiles: 1 }) };
    return refused(() => publishRaw({ version: '1.1.0', ...a, extra }), { status: 400, code: 'PW_BAD_METADATA', message: /stable\/9\.0\.0\.tar\.gz.*uploads only/ });
  });

  test('targets that change an existing release target: 400 PW_BAD_METADATA', async () => {
    const old = (await product()).releases[0]!;
    const a = plainArchive();
    const extra = { [old.target]: releaseTarget(a.archive, { product: 'acme', channel: 'stable', version: '1.0.0', treeBytes: a.treeBytes, treeFiles: a.treeFiles }) };
    await refused(() => publishRaw({ version: '1.1.0', ...a, extra }), { status: 400, code: 'PW_BAD_METADATA', message: /stable\/1\.0\.0\.tar\.gz/ });
  });

  test('a custom field naming another version (or product, channel, kind): 400 PW_BAD_METADATA', async () => {
    for (const custom of [{ version: '9.9.9' }, { product: 'other' }, { channel: 'beta' }, { kind: 'delta' }, { treeHash: 'nothex' }, { treeBytes: -1 }]) {
      await refused(() => publishRaw({ version: '1.1.0', ...plainArchive(), custom }), { status: 400, code: 'PW_BAD_METADATA', message: /custom\.patchwire/ });
    }
  });

  test('metadata.version differing from the signed target path: refused, nothing stored', async () => {
    // Signed as stable/1.1.0.tar.gz but the metadata field says 1.2.0.
    await refused(() => publishRaw({ version: '1.1.0', metadataVersion: '1.2.0', ...plainArchive() }), { status: 400, code: 'PW_BAD_METADATA', message: /stable\/1\.2\.0\.tar\.gz/ });
  });

  test('a tree size or file count other than signed: 400 PW_BAD_METADATA', async () => {
    const a = plainArchive('12345');
    await refused(() => publishRaw({ version: '1.1.0', archive: a.archive, treeBytes: 4, treeFiles: 1 }), { status: 400, code: 'PW_BAD_METADATA', message: /\b4 bytes\b/ });
    await refused(() => publishRaw({ version: '1.1.0', archive: a.archive, treeBytes: 5, treeFiles: 2 }), { status: 400, code: 'PW_BAD_METADATA', message: /signed tree says/ });
  });

  test('bytes that are not a tar.gz (signed correctly): 400 PW_BAD_METADATA', () => {
    const junk = Buffer.from('this is not a gzip file at all');
    return refused(() => publishRaw({ version: '1.1.0', archive: junk, treeBytes: 0, treeFiles: 0 }), { status: 400, code: 'PW_BAD_METADATA', message: /cannot be read.*\.tar\.gz/ });
  });

  // Unsafe archives: signed properly (right length, sha256, tree numbers), so only the archive check can stop them.
  const unsafe: Array<[string, RawEntry[], number, number]> = [
    ['an entry ../evil', [{ name: 'README', type: 'file', content: 'ok' }, { name: '../evil', type: 'file', content: 'escaped' }], 9, 2],
    ['an entry a/../../evil', [{ name: 'a/../../evil', type: 'file', content: 'escaped' }], 7, 1],
    ['an absolute path /tmp/x', [{ name: `/tmp/patchwire-evil-${process.pid}`, type: 'file', content: 'absolute' }], 8, 1],
    ['a symlink to /etc followed by a file through it', [{ name: 'etc', type: 'symlink', linkname: '/etc' }, { name: 'etc/evil', type: 'file', content: 'through' }], 7, 1],
    ['a symlink up and out (../..)', [{ name: 'up', type: 'symlink', linkname: '../..' }, { name: 'up/evil', type: 'file', content: 'through' }], 7, 1],
    ['an in-tree symlink followed by a file through it', [{ name: 'real', type: 'dir' }, { name: 'alias', type: 'symlink', linkname: 'real' }, { name: 'alias/x', type: 'file', content: 'through' }], 7, 1],
  ];
  for (const [label, entries, treeBytes, treeFiles] of unsafe) {
    test(`an archive with ${label}: 400 PW_UNSAFE_ARCHIVE, no artifact stored`, async () => {
      const archive = rawTarGz(entries);
      const body = await refusedWith(() => publishRaw({ version: '1.1.0', archive, treeBytes, treeFiles }), { status: 400, code: 'PW_UNSAFE_ARCHIVE', message: /unsafe archive entry.*rebuild the archive from a plain folder/ });
      assert.doesNotMatch(body.message, new RegExp(dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'no server paths in the answer');
      const sha = sha256(archive);
      await assert.rejects(access(join(dataDir, 'artifacts', sha.slice(0, 2), sha)), 'the archive bytes are not stored');
      await assert.rejects(access(join(dataDir, 'evil')));
      await assert.rejects(access(join(dataDir, 'artifacts', 'evil')));
      await assert.rejects(access(`/tmp/patchwire-evil-${process.pid}`));
      const dl = await http('GET', `/v1/products/acme/targets/stable/${sha}.1.1.0.tar.gz`);
      assertError(dl.status, dl.text, { status: 404, code: 'PW_NOT_FOUND' });
    });
  }

  test('the archive part before the metadata: 400 PW_BAD_REQUEST', async () => {
    const a = plainArchive();
    const current = (await product()).targets;
    const targets = signNext(current, publisher, { 'stable/1.1.0.tar.gz': releaseTarget(a.archive, { product: 'acme', channel: 'stable', version: '1.1.0', treeBytes: a.treeBytes, treeFiles: a.treeFiles }) });
    await refused(() => postRelease([['archive', a.archive], ['metadata', JSON.stringify({ channel: 'stable', version: '1.1.0', targets })]]),
      { status: 400, code: 'PW_BAD_REQUEST', message: /`metadata` field must come before the `archive`/ });
  });

  test('no archive part: 400 PW_BAD_REQUEST', async () => {
    const a = plainArchive();
    const current = (await product()).targets;
    const targets = signNext(current, publisher, { 'stable/1.1.0.tar.gz': releaseTarget(a.archive, { product: 'acme', channel: 'stable', version: '1.1.0', treeBytes: a.treeBytes, treeFiles: a.treeFiles }) });
    await refused(() => postRelease([['metadata', JSON.stringify({ channel: 'stable', version: '1.1.0', targets })]]),
      { status: 400, code: 'PW_BAD_REQUEST', message: /needs a `metadata` field and an `archive` file/ });
  });

  test('metadata that is not JSON, or lacks fields: 400 PW_BAD_REQUEST', async () => {
    const a = plainArchive();
    await refused(() => postRelease([['metadata', '{not json'], ['archive', a.archive]]), { status: 400, code: 'PW_BAD_REQUEST', message: /not JSON/ });
    await refused(() => postRelease([['metadata', JSON.stringify({ channel: 'stable', targets: {} })], ['archive', a.archive]]), { status: 400, code: 'PW_BAD_REQUEST', message: /version/ });
  });

  test('an unexpected extra part: 400 PW_BAD_REQUEST', async () => {
    const a = plainArchive();
    await refused(() => postRelease([['metadata', JSON.stringify({ channel: 'stable', version: '1.1.0', targets: {} })], ['notes', 'hello'], ['archive', a.archive]]),
      { status: 400, code: 'PW_BAD_REQUEST', message: /unexpected part 'notes'/ });
  });

  test('a non-multipart body: refused with PW_BAD_REQUEST saying to send multipart', async () => {
    const json = { channel: 'stable', version: '1.1.0', targets: {} };
    await refused(() => postJson('/v1/admin/products/acme/releases', json, auth), { status: 400, code: 'PW_BAD_REQUEST', message: /multipart\/form-data/ });
    await refused(() => http('POST', '/v1/admin/products/acme/releases', { headers: { ...auth, 'content-type': 'application/octet-stream' }, body: plainArchive().archive }),
      { status: 415, code: 'PW_BAD_REQUEST', message: /multipart\/form-data/ });
  });

  test('a release for an unknown product: 404 PW_UNKNOWN_PRODUCT', async () => {
    const { body, contentType } = await multipartBody([['metadata', '{}'], ['archive', plainArchive().archive]]);
    await refused(() => http('POST', '/v1/admin/products/nope/releases', { headers: { ...auth, 'content-type': contentType }, body }), { status: 404, code: 'PW_UNKNOWN_PRODUCT' });
  });

  test('an upload over serve --max-upload: 413 PW_PAYLOAD_TOO_LARGE, nothing staged or stored', async () => {
    // A second server with a 2 KiB limit; the product and key are set up with the CLI as usual.
    const small = await f.serve('small-data', { args: ['--max-upload', '2048'] });
    try {
      const admin = ['--server', small.url, '--token', TOKEN];
      const r = await runCli(['product', 'create', ...admin, '--product', 'acme', '--key', keyFile, '--root-out', join(root, 'small.root.json')]);
      assert.equal(r.code, 0, r.stderr);
      const info = await fetch(`${small.url}/v1/admin/products/acme`, { headers: auth }).then((x) => x.json()) as ProductInfo;
      const big = rawTarGz([{ name: 'big', type: 'file', content: Array.from({ length: 4000 }, (_, i) => String(i * 7919)).join(',') }]);
      assert.ok(big.length > 2048);
      const targets = signNext(info.targets, publisher, { 'stable/1.0.0.tar.gz': releaseTarget(big, { product: 'acme', channel: 'stable', version: '1.0.0', treeBytes: 1, treeFiles: 1 }) });
      const { body, contentType } = await multipartBody([['metadata', JSON.stringify({ channel: 'stable', version: '1.0.0', targets })], ['archive', big]]);
      const res = await fetch(`${small.url}/v1/admin/products/acme/releases`, { method: 'POST', headers: { ...auth, 'content-type': contentType }, body: body as unknown as BodyInit });
      assertError(res.status, await res.text(), { status: 413, code: 'PW_PAYLOAD_TOO_LARGE', message: /--max-upload|smaller/ });
      const after = await fetch(`${small.url}/v1/admin/products/acme`, { headers: auth }).then((x) => x.json()) as ProductInfo;
      assert.deepEqual(after.releases, []);
      assert.equal(after.targets.signed.version, info.targets.signed.version);
      const files = [...(await snapshotDir(join(root, 'small-data', 'artifacts'))).entries()].filter(([, v]) => v !== 'dir');
      assert.deepEqual(files, [], 'no artifact and no staged file');
    } finally {
      await small.stop();
    }
  });

  test('a proper hand-made release is accepted (the refusals above are not the request builder failing)', async () => {
    // Run last in this block: it changes the product (1.0.1 keeps later tests' 1.1.0 requests valid).
    const a = plainArchive('accepted');
    const res = await publishRaw({ version: '1.0.1', ...a });
    assert.equal(res.status, 201, res.text);
    const p = await product();
    assert.deepEqual(p.releases.map((r) => r.version).sort(), ['1.0.0', '1.0.1']);
    assert.deepEqual(await stagingFiles(), []);
  });
});

// ---------------------------------------------------------------------------------------------
// POST /v1/admin/products
// ---------------------------------------------------------------------------------------------

describe('POST /v1/admin/products', () => {
  const online = async () => adminJson<{ snapshot: string; timestamp: string }>('/online-keys');
  const create = (body: unknown) => () => postJson('/v1/admin/products', body, auth);

  test('a bad product name: 400 PW_BAD_REQUEST', async () => {
    const { root: r, targets } = createInitialMetadata({ publisher, online: await online(), now: new Date() });
    for (const name of ['Bad Name', '../evil', '-leading', 'a'.repeat(65), '']) {
      await refused(create({ product: name, root: r, targets }), { status: 400, code: 'PW_BAD_REQUEST', message: /name|product/ });
    }
  });

  test('a root signed by one key but claiming another: 400 PW_BAD_SIGNATURE', async () => {
    const claimed = generateKeyPair();
    const { root: r, targets } = createInitialMetadata({ publisher: claimed, online: await online(), now: new Date() });
    const { root: signedByPublisher } = createInitialMetadata({ publisher, online: await online(), now: new Date() });
    // The claimed key's root, carrying the real publisher's signature.
    const forged = { ...r, signatures: (signedByPublisher as { signatures: unknown }).signatures };
    await refused(create({ product: 'forged', root: forged, targets }), { status: 400, code: 'PW_BAD_SIGNATURE', message: /root/ });
  });

  test('targets v1 signed by another key than the root names: 400 PW_BAD_SIGNATURE', async () => {
    const { root: r } = createInitialMetadata({ publisher, online: await online(), now: new Date() });
    const { targets } = createInitialMetadata({ publisher: generateKeyPair(), online: await online(), now: new Date() });
    await refused(create({ product: 'mixed', root: r, targets }), { status: 400, code: 'PW_BAD_SIGNATURE' });
  });

  test("a root whose snapshot/timestamp keys are not the server's online keys: 400 PW_BAD_METADATA", async () => {
    const real = await online();
    for (const keys of [
      { snapshot: generateKeyPair().publicHex, timestamp: generateKeyPair().publicHex },
      { snapshot: real.snapshot, timestamp: generateKeyPair().publicHex },
      { snapshot: real.timestamp, timestamp: real.snapshot },
    ]) {
      const { root: r, targets } = createInitialMetadata({ publisher, online: keys, now: new Date() });
      await refused(create({ product: 'foreign', root: r, targets }), { status: 400, code: 'PW_BAD_METADATA', message: /online .* key.*patchwire product create/ });
    }
  });

  test('an existing product: 409 PW_PRODUCT_EXISTS, its metadata untouched', async () => {
    const { root: r, targets } = createInitialMetadata({ publisher: generateKeyPair(), online: await online(), now: new Date() });
    const rootBefore = await http('GET', '/v1/products/acme/tuf/1.root.json');
    await refused(create({ product: 'acme', root: r, targets }), { status: 409, code: 'PW_PRODUCT_EXISTS', message: /exists already.*pick another name/ });
    const rootAfter = await http('GET', '/v1/products/acme/tuf/1.root.json');
    assert.equal(rootAfter.text, rootBefore.text);
  });

  test('unknown fields and non-object metadata are refused on the admin surface: 400 PW_BAD_REQUEST', async () => {
    const { root: r, targets } = createInitialMetadata({ publisher, online: await online(), now: new Date() });
    await refused(create({ product: 'extra', root: r, targets, owner: 'me' }), { status: 400, code: 'PW_BAD_REQUEST', message: /additional/ });
    await refused(create({ product: 'strings', root: JSON.stringify(r), targets }), { status: 400, code: 'PW_BAD_REQUEST', message: /root/ });
  });
});

// ---------------------------------------------------------------------------------------------
// PUT /v1/admin/products/:product/schedule
// ---------------------------------------------------------------------------------------------

describe('PUT /v1/admin/products/acme/schedule', () => {
  const put = (body: unknown, product = 'acme') => () =>
    http('PUT', `/v1/admin/products/${product}/schedule`, { headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const future = () => new Date(Date.now() + 2 * 3600_000).toISOString();

  before(async () => {
    // A standing schedule that every refused request must leave as it is.
    const r = await put({ at: new Date(Date.now() + 3600_000).toISOString(), spreadSeconds: 600 })();
    assert.equal(r.status, 200, r.text);
  });

  test('a time in the past: 400 PW_BAD_REQUEST', () =>
    refused(put({ at: new Date(Date.now() - 60_000).toISOString() }), { status: 400, code: 'PW_BAD_REQUEST', message: /not in the future.*later --at/ }));

  test('a time that is not ISO-8601: 400 PW_BAD_REQUEST', async () => {
    for (const at of ['tomorrow', '12/01/2030 09:00', String(Date.now() + 3600_000), '2030-13-01T09:00:00Z']) {
      await refused(put({ at }), { status: 400, code: 'PW_BAD_REQUEST', message: /ISO-8601.*2026-12-01T09:00:00Z/ });
    }
  });

  test('a calendar date that does not exist (Feb 30): 400 PW_BAD_REQUEST, not silently moved to March', () =>
    refused(put({ at: '2030-02-30T09:00:00Z' }), { status: 400, code: 'PW_BAD_REQUEST', message: /2030-02-30/ }));

  test('a number instead of a string: 400 PW_BAD_REQUEST', () =>
    refused(put({ at: Date.now() + 3600_000 }), { status: 400, code: 'PW_BAD_REQUEST', message: /at/ }));

  test('a negative or fractional spread: 400 PW_BAD_REQUEST', async () => {
    await refused(put({ at: future(), spreadSeconds: -1 }), { status: 400, code: 'PW_BAD_REQUEST', message: /spreadSeconds/ });
    await refused(put({ at: future(), spreadSeconds: 1.5 }), { status: 400, code: 'PW_BAD_REQUEST', message: /spreadSeconds/ });
    await refused(put({ at: future(), spreadSeconds: '60' }), { status: 400, code: 'PW_BAD_REQUEST', message: /spreadSeconds/ });
  });

  test('an unknown product: 404 PW_UNKNOWN_PRODUCT', () =>
    refused(put({ at: future() }, 'nope'), { status: 404, code: 'PW_UNKNOWN_PRODUCT', message: /patchwire product create/ }));

  test('a bad channel: 400 PW_BAD_REQUEST', () =>
    refused(put({ at: future(), channel: '../stable' }), { status: 400, code: 'PW_BAD_REQUEST', message: /channel/ }));
});

// ---------------------------------------------------------------------------------------------
// POST /v1/admin/products/:product/moved
// ---------------------------------------------------------------------------------------------

describe('POST /v1/admin/products/acme/moved', () => {
  const NEW_URL = 'https://updates.example.com';

  async function movedRequest(opts: { notice: string; custom?: Record<string, unknown>; signedBytes?: string; path?: string | null }) {
    const current = (await product()).targets;
    const signed = opts.signedBytes ?? opts.notice;
    const add = opts.path === null ? {} : {
      [opts.path ?? 'moved.json']: { length: Buffer.byteLength(signed), sha256: sha256(signed), custom: { patchwire: { kind: 'moved', product: 'acme', url: NEW_URL, ...opts.custom } } },
    };
    const targets = signNext(current, publisher, add);
    return postJson('/v1/admin/products/acme/moved', { notice: opts.notice, targets }, auth);
  }
  const notice = (over: Record<string, unknown> = {}) => JSON.stringify({ product: 'acme', url: NEW_URL, issuedAt: new Date().toISOString(), ...over });

  test('a notice that is not JSON: 400 PW_BAD_REQUEST', () =>
    refused(() => movedRequest({ notice: 'move to https://updates.example.com' }), { status: 400, code: 'PW_BAD_REQUEST', message: /not JSON.*patchwire move/ }));

  test('a notice for another product: 400 PW_BAD_REQUEST', () =>
    refused(() => movedRequest({ notice: notice({ product: 'other' }) }), { status: 400, code: 'PW_BAD_REQUEST', message: /product:'acme'/ }));

  test('a notice URL that is not http(s): 400 PW_BAD_REQUEST', async () => {
    for (const url of ['ftp://updates.example.com', 'javascript:alert(1)', 'file:///etc/passwd', 'updates.example.com', 'https://user:pw@updates.example.com']) {
      await refused(() => movedRequest({ notice: notice({ url }), custom: { url } }), { status: 400, code: 'PW_BAD_REQUEST', message: /http\(s\)/ });
    }
  });

  test('targets that do not list moved.json: 400 PW_BAD_METADATA', async () => {
    await refused(() => movedRequest({ notice: notice(), path: null }), { status: 400, code: 'PW_BAD_METADATA', message: /do not list 'moved\.json'/ });
    await refused(() => movedRequest({ notice: notice(), path: 'moved2.json' }), { status: 400, code: 'PW_BAD_METADATA' });
  });

  test('a notice other than the signed bytes: 400 PW_ARTIFACT_MISMATCH', () =>
    refused(() => movedRequest({ notice: notice(), signedBytes: notice({ issuedAt: '2000-01-01T00:00:00.000Z' }) }), { status: 400, code: 'PW_ARTIFACT_MISMATCH' }));

  test('a signed custom URL other than the notice URL: 400 PW_BAD_METADATA', () =>
    refused(() => movedRequest({ notice: notice(), custom: { url: 'https://evil.example.com' } }), { status: 400, code: 'PW_BAD_METADATA', message: /custom\.patchwire/ }));

  test('targets signed by a different key: 400 PW_BAD_SIGNATURE', async () => {
    const current = (await product()).targets;
    const text = notice();
    const targets = signNext(current, publisher, { 'moved.json': { length: Buffer.byteLength(text), sha256: sha256(text), custom: { patchwire: { kind: 'moved', product: 'acme', url: NEW_URL } } } }, generateKeyPair());
    await refused(() => postJson('/v1/admin/products/acme/moved', { notice: text, targets }, auth), { status: 400, code: 'PW_BAD_SIGNATURE' });
  });
});

// ---------------------------------------------------------------------------------------------
// GET/HEAD /v1/products/:product/targets/... (artifact downloads)
// ---------------------------------------------------------------------------------------------

describe('artifact downloads', () => {
  let url: string;
  let bytes: Buffer;
  let release: ProductInfo['releases'][number];

  before(async () => {
    release = (await product()).releases.find((r) => r.version === '1.0.0')!;
    url = `/v1/products/acme/targets/stable/${release.sha256}.1.0.0.tar.gz`;
    const full = await http('GET', url);
    assert.equal(full.status, 200);
    bytes = full.body;
  });

  test('a full download: the signed bytes, ETag is the sha256 in quotes, immutable caching, ranges offered', async () => {
    const r = await http('GET', url);
    assert.equal(r.status, 200);
    assert.equal(sha256(r.body), release.sha256);
    assert.equal(r.body.length, release.length);
    assert.equal(r.headers.get('etag'), `"${release.sha256}"`);
    assert.match(r.headers.get('cache-control') ?? '', /immutable/);
    assert.match(r.headers.get('cache-control') ?? '', /max-age=31536000/);
    assert.equal(r.headers.get('accept-ranges'), 'bytes');
    assert.equal(r.headers.get('content-length'), String(release.length));
  });

  test('Range bytes=0-9: 206 with Content-Range and the first 10 bytes', async () => {
    const r = await http('GET', url, { headers: { range: 'bytes=0-9' } });
    assert.equal(r.status, 206);
    assert.equal(r.headers.get('content-range'), `bytes 0-9/${bytes.length}`);
    assert.equal(r.headers.get('content-length'), '10');
    assert.deepEqual(r.body, bytes.subarray(0, 10));
  });

  test('Range bytes=-5: 206 with the last 5 bytes', async () => {
    const r = await http('GET', url, { headers: { range: 'bytes=-5' } });
    assert.equal(r.status, 206);
    assert.equal(r.headers.get('content-range'), `bytes ${bytes.length - 5}-${bytes.length - 1}/${bytes.length}`);
    assert.deepEqual(r.body, bytes.subarray(bytes.length - 5));
  });

  test('Range bytes=N- where N is the length: 416 PW_RANGE_NOT_SATISFIABLE with Content-Range bytes */N', async () => {
    for (const range of [`bytes=${bytes.length}-`, `bytes=${bytes.length + 100}-${bytes.length + 200}`]) {
      const r = await http('GET', url, { headers: { range } });
      assertError(r.status, r.text, { status: 416, code: 'PW_RANGE_NOT_SATISFIABLE', message: new RegExp(`${bytes.length} bytes`) });
      assert.equal(r.headers.get('content-range'), `bytes */${bytes.length}`);
    }
  });

  test('Range with the last byte only (bytes=N-1-): 206 with one byte', async () => {
    const r = await http('GET', url, { headers: { range: `bytes=${bytes.length - 1}-` } });
    assert.equal(r.status, 206);
    assert.deepEqual(r.body, bytes.subarray(bytes.length - 1));
  });

  test('If-Range with another ETag: the whole file with 200', async () => {
    const r = await http('GET', url, { headers: { range: 'bytes=0-9', 'if-range': '"0000"' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, bytes);
  });

  test('If-None-Match with the ETag: 304 without a body', async () => {
    const r = await http('GET', url, { headers: { 'if-none-match': `"${release.sha256}"` } });
    assert.equal(r.status, 304);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers.get('etag'), `"${release.sha256}"`);
  });

  test('HEAD gives the length and no body', async () => {
    const r = await http('HEAD', url);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-length'), String(bytes.length));
    assert.equal(r.headers.get('etag'), `"${release.sha256}"`);
    assert.equal(r.body.length, 0);
    const ranged = await http('HEAD', url, { headers: { range: 'bytes=0-9' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get('content-range'), `bytes 0-9/${bytes.length}`);
    assert.equal(ranged.headers.get('content-length'), '10');
  });

  test('a target path with a sha256 the product does not serve: 404 PW_NOT_FOUND', async () => {
    for (const path of [
      `stable/${sha256('never published')}.1.0.0.tar.gz`,
      `stable/${release.sha256.toUpperCase()}.1.0.0.tar.gz`,
      `stable/1.0.0.tar.gz`,
      `stable/${release.sha256.slice(0, 63)}.1.0.0.tar.gz`,
    ]) {
      const r = await http('GET', `/v1/products/acme/targets/${path}`);
      assertError(r.status, r.text, { status: 404, code: 'PW_NOT_FOUND', message: /<sha256>/ });
    }
  });

  test('an unknown product: 404 PW_UNKNOWN_PRODUCT', async () => {
    const r = await http('GET', `/v1/products/nope/targets/stable/${release.sha256}.1.0.0.tar.gz`);
    assertError(r.status, r.text, { status: 404, code: 'PW_UNKNOWN_PRODUCT' });
  });
});

// ---------------------------------------------------------------------------------------------
// CLI bad flags (real processes): exit 2 and a message naming the flag, nothing changed
// ---------------------------------------------------------------------------------------------

describe('CLI bad flags', () => {
  const admin = () => ['--server', server.url, '--token', TOKEN];

  async function refusedCli(args: string[], message: RegExp, opts: Parameters<typeof runCli>[1] = {}) {
    const before = await state();
    const r = await runCli(args, opts);
    assert.equal(r.code, 2, `patchwire ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /^(patchwire: |error: )/m);
    assert.deepEqual(await state(), before, `patchwire ${args.join(' ')} changed something`);
    return r;
  }

  test('publish with a non-semver --version', async () => {
    const dir = await writeTree(join(root, 'cli-tree-a'), { README: 'x' });
    await refusedCli(['publish', ...admin(), '--product', 'acme', '--version', '1.0', '--key', keyFile, dir], /--version '1\.0' is not a semver version such as 1\.2\.3/);
  });

  test('publish with a DIR that does not exist, or without DIR', async () => {
    const missing = join(root, 'no-such-folder');
    await refusedCli(['publish', ...admin(), '--product', 'acme', '--version', '2.0.0', '--key', keyFile, missing], new RegExp(`${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not a folder`));
    await refusedCli(['publish', ...admin(), '--product', 'acme', '--version', '2.0.0', '--key', keyFile], /dir/i);
  });

  test('publish with a key file that is not a key', async () => {
    const notKey = join(root, 'not-a-key.json');
    await writeFile(notKey, '{"hello": "world"}');
    const dir = await writeTree(join(root, 'cli-tree-b'), { README: 'x' });
    await refusedCli(['publish', ...admin(), '--product', 'acme', '--version', '2.0.0', '--key', notKey, dir], /not-a-key\.json is not a patchwire key file.*patchwire keygen/);
  });

  test('schedule with a bad --at and a bad --spread', async () => {
    await refusedCli(['schedule', ...admin(), '--product', 'acme', '--at', 'next tuesday'], /--at 'next tuesday' is not an ISO-8601 date-time/);
    await refusedCli(['schedule', ...admin(), '--product', 'acme', '--at', new Date(Date.now() + 3600_000).toISOString(), '--spread', 'forever'], /--spread 'forever' is not a duration/);
    await refusedCli(['schedule', ...admin(), '--product', 'acme', '--at', new Date(Date.now() + 3600_000).toISOString(), '--spread', '-5m'], /--spread/);
  });

  test('schedule with --at of a date that does not exist (Feb 30): exit 2, not moved to March', async () => {
    await refusedCli(['schedule', ...admin(), '--product', 'acme', '--at', '2030-02-30T09:00:00Z'], /--at '2030-02-30T09:00:00Z'/);
  });

  test('product create when --root-out exists: refused, the file is untouched, no product', async () => {
    const out = join(root, 'existing.root.json');
    await writeFile(out, 'keep me');
    await refusedCli(['product', 'create', ...admin(), '--product', 'newprod', '--key', keyFile, '--root-out', out], /existing\.root\.json exists already.*--root-out/);
    assert.equal(await readFile(out, 'utf8'), 'keep me');
    assert.deepEqual((await adminJson<{ products: string[] }>('/products')).products, ['acme']);
  });

  test('devices without a token', async () => {
    await refusedCli(['devices', '--server', server.url], /admin token is required: pass --token or set PATCHWIRE_TOKEN/);
  });

  test('serve with --port 99999: exit 2 naming the flag, no data folder created', async () => {
    const data = join(root, 'never-created');
    const r = await runCli(['serve', '--data', data, '--port', '99999'], { timeoutMs: 20_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--port '99999' is not a port number/);
    await assert.rejects(access(data), 'a refused serve creates no data folder');
  });

  test('serve with bad mirror, delta or webhook flags: exit 2 naming the flag, no data folder created', async () => {
    const data = join(root, 'never-created-2');
    const cases: Array<[string[], RegExp]> = [
      [['--upstream', 'http://127.0.0.1:9'], /--upstream needs --upstream-token/],
      [['--upstream-token', 't'], /--upstream-token goes with --upstream/],
      [['--upstream', 'ftp://x', '--upstream-token', 't'], /--upstream 'ftp:\/\/x' must be http\(s\)/],
      [['--upstream', 'http://127.0.0.1:9', '--upstream-token', 't', '--mirror-token', 'm'], /--mirror-token is for a primary/],
      [['--delta-margin', '2'], /--delta-margin '2' must be a fraction/],
      [['--delta-from', '-1'], /--delta-from/],
      [['--alarm-webhook', 'not a url'], /--alarm-webhook 'not a url' is not an http\(s\) URL/],
      [['--reconcile-interval', 'soon'], /--reconcile-interval 'soon' is not a duration/],
      [['--mirror-allow', 'http://127.0.0.1:8081,ftp://m.example'], /--mirror-allow 'ftp:\/\/m\.example' must be http\(s\):\/\/host\[:port\]/],
      [['--mirror-allow', 'http://user:pw@m.example:8081'], /--mirror-allow 'http:\/\/user:pw@m\.example:8081' must be http\(s\)/],
      [['--upstream', 'http://127.0.0.1:9', '--upstream-token', 't', '--mirror-allow', 'http://127.0.0.1:8081'], /--mirror-allow is for a primary/],
    ];
    for (const [flags, message] of cases) {
      const r = await runCli(['serve', '--data', data, '--port', '0', ...flags], { timeoutMs: 20_000 });
      assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    await assert.rejects(access(data), 'a refused serve creates no data folder');
  });
});
