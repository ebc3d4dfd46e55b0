import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Metadata, MetadataKind } from '@tufjs/models';
import { generateKeyPair, keyIdOf, KeyFileError, readKeyFile, signerFor, tufKey, writeKeyFile, type KeyPair } from '../src/tuf/keys.js';
import { createInitialMetadata, nextTargets, type SignedJson } from '../src/tuf/publisher.js';
import { loadOrCreateOnlineKeys, signSnapshot, signTimestamp, TufError, verifyInitialRoot, verifyTargets } from '../src/tuf/repository.js';
import { tempDir } from './helpers/temp-dir.js';

const now = new Date('2030-01-01T00:00:00Z');
const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

function product() {
  const publisher = generateKeyPair();
  const snapshot = generateKeyPair();
  const timestamp = generateKeyPair();
  const online = { snapshot: snapshot.publicHex, timestamp: timestamp.publicHex };
  const initial = createInitialMetadata({ publisher, online, now });
  return { publisher, snapshot, timestamp, online, ...initial };
}

/** Edits a signed document and signs it again with `key` (replacing all signatures). */
function resign(kind: MetadataKind.Root | MetadataKind.Targets, json: SignedJson, key: KeyPair, edit: (signed: Record<string, unknown>) => void): SignedJson {
  const copy = structuredClone(json) as { signed: Record<string, unknown> };
  edit(copy.signed);
  const md = kind === MetadataKind.Root ? Metadata.fromJSON(kind, copy as never) : Metadata.fromJSON(kind, copy as never);
  md.sign(signerFor(key), false);
  return md.toJSON();
}

function assertTufError(fn: () => unknown, code: TufError['code'], message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof TufError, `expected TufError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

test('key pair: keyid is sha256 of the canonical TUF key object, signatures verify', () => {
  const pair = generateKeyPair();
  assert.match(pair.publicHex, /^[0-9a-f]{64}$/);
  const canonical = `{"keytype":"ed25519","keyval":{"public":"${pair.publicHex}"},"scheme":"ed25519"}`;
  assert.equal(pair.keyid, sha256(canonical));
  assert.equal(keyIdOf(pair.publicHex), pair.keyid);
  assert.equal(tufKey(pair.publicHex).keyID, pair.keyid);

  const md = Metadata.fromJSON(MetadataKind.Root, product().root as never);
  md.sign(signerFor(pair), false);
  tufKey(pair.publicHex).verifySignature(md);
  assert.throws(() => tufKey(generateKeyPair().publicHex).verifySignature(md));
});

test('key file: round trip with mode 0600', async (t) => {
  const dir = await tempDir(t, 'pw-tuf-repo-');
  const file = join(dir, 'publisher.key');
  const pair = generateKeyPair();
  await writeKeyFile(file, pair);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.deepEqual(await readKeyFile(file), pair);
});

test('key file: missing, garbage, damaged and overwrite are refused with a clear KeyFileError', async (t) => {
  const dir = await tempDir(t, 'pw-tuf-repo-');
  const missing = join(dir, 'none.key');
  await assert.rejects(readKeyFile(missing), (err: Error) =>
    err instanceof KeyFileError && err.message.includes('does not exist') && err.message.includes(`patchwire keygen --out ${missing}`));

  const garbage = join(dir, 'garbage.key');
  await writeFile(garbage, 'hello');
  await assert.rejects(readKeyFile(garbage), (err: Error) =>
    err instanceof KeyFileError && err.message.includes(`${garbage} is not a patchwire key file`) && err.message.includes('patchwire keygen'));
  await writeFile(garbage, '{"type":"something-else"}');
  await assert.rejects(readKeyFile(garbage), /is not a patchwire key file/);

  const damaged = join(dir, 'damaged.key');
  const a = generateKeyPair();
  const b = generateKeyPair();
  await writeFile(damaged, JSON.stringify({ type: 'patchwire-ed25519-key', keyid: a.keyid, public: a.publicHex, private: b.privatePem }));
  await assert.rejects(readKeyFile(damaged), (err: Error) => err instanceof KeyFileError && /damaged.*does not belong/.test(err.message));

  const file = join(dir, 'publisher.key');
  await writeKeyFile(file, a);
  const before = await readFile(file);
  await assert.rejects(writeKeyFile(file, b), (err: Error) => err instanceof KeyFileError && /exists already; refusing to overwrite/.test(err.message));
  assert.deepEqual(await readFile(file), before);

  await assert.rejects(writeKeyFile(join(dir, 'no-such-folder', 'x.key'), a), (err: Error) => err instanceof KeyFileError && /cannot create/.test(err.message));
});

test('verifyInitialRoot accepts a good root', () => {
  const p = product();
  const v = verifyInitialRoot(p.root, p.online, now);
  assert.equal(v.version, 1);
  assert.equal(v.json, JSON.stringify(p.root));
  assert.ok(v.expires > now);
});

test('verifyInitialRoot refuses wrong online keys, bad signature, expiry, version, malformed input', () => {
  const p = product();
  const other = { snapshot: generateKeyPair().publicHex, timestamp: p.online.timestamp };
  assertTufError(() => verifyInitialRoot(p.root, other, now), 'PW_BAD_METADATA', /snapshot role.*online snapshot key/);
  assertTufError(() => verifyInitialRoot(p.root, { ...p.online, timestamp: p.online.snapshot }, now), 'PW_BAD_METADATA', /timestamp role/);

  const tampered = structuredClone(p.root) as { signed: { expires: string } };
  tampered.signed.expires = '2099-01-01T00:00:00Z';
  assertTufError(() => verifyInitialRoot(tampered, p.online, now), 'PW_BAD_SIGNATURE', /signature does not verify/);
  const foreign = resign(MetadataKind.Root, p.root, generateKeyPair(), () => {});
  assertTufError(() => verifyInitialRoot(foreign, p.online, now), 'PW_BAD_SIGNATURE', /root metadata signature/);

  const later = new Date(now.getTime() + 400 * 86_400_000);
  assertTufError(() => verifyInitialRoot(p.root, p.online, later), 'PW_BAD_METADATA', /expired/);

  const v2 = resign(MetadataKind.Root, p.root, p.publisher, (s) => { s.version = 2; });
  assertTufError(() => verifyInitialRoot(v2, p.online, now), 'PW_METADATA_VERSION', /version 2/);
  const noConsistent = resign(MetadataKind.Root, p.root, p.publisher, (s) => { s.consistent_snapshot = false; });
  assertTufError(() => verifyInitialRoot(noConsistent, p.online, now), 'PW_BAD_METADATA', /consistent_snapshot/);

  assertTufError(() => verifyInitialRoot('nope', p.online, now), 'PW_BAD_METADATA', /JSON object/);
  assertTufError(() => verifyInitialRoot({ signed: {}, signatures: [] }, p.online, now), 'PW_BAD_METADATA', /malformed/);
  assertTufError(() => verifyInitialRoot(p.targets, p.online, now), 'PW_BAD_METADATA', /malformed/);
});

test('verifyTargets accepts the next targets and refuses tampering, wrong version, foreign signer', () => {
  const p = product();
  const rootJson = verifyInitialRoot(p.root, p.online, now).json;
  assert.equal(verifyTargets(rootJson, p.targets, 1, now).version, 1);

  const custom = { patchwire: { kind: 'full', product: 'acme', channel: 'stable', version: '1.0.0' } };
  const v2 = nextTargets({ current: p.targets, publisher: p.publisher, add: { 'stable/1.0.0.tar.gz': { length: 10, sha256: sha256('x'), custom } }, now });
  const ok = verifyTargets(rootJson, v2, 2, now);
  assert.equal(ok.version, 2);
  assert.deepEqual(ok.targets, { 'stable/1.0.0.tar.gz': { length: 10, sha256: sha256('x'), custom } });
  assert.equal(ok.json, JSON.stringify(v2));

  const tampered = structuredClone(v2) as { signed: { targets: Record<string, { hashes: { sha256: string } }> } };
  tampered.signed.targets['stable/1.0.0.tar.gz']!.hashes.sha256 = sha256('evil');
  assertTufError(() => verifyTargets(rootJson, tampered, 2, now), 'PW_BAD_SIGNATURE', /targets metadata signature.*publisher key/);

  assertTufError(() => verifyTargets(rootJson, v2, 3, now), 'PW_METADATA_VERSION', /version 2, expected 3/);

  const foreign = resign(MetadataKind.Targets, v2, generateKeyPair(), () => {});
  assertTufError(() => verifyTargets(rootJson, foreign, 2, now), 'PW_BAD_SIGNATURE', /signed by 0\/1 keys/);

  const later = new Date(now.getTime() + 400 * 86_400_000);
  assertTufError(() => verifyTargets(rootJson, v2, 2, later), 'PW_BAD_METADATA', /expired/);

  const noHash = resign(MetadataKind.Targets, v2, p.publisher, (s) => {
    (s.targets as Record<string, { hashes: Record<string, string> }>)['stable/1.0.0.tar.gz']!.hashes = { sha512: 'ab' };
  });
  assertTufError(() => verifyTargets(rootJson, noHash, 2, now), 'PW_BAD_METADATA', /no sha256/);
});

test('nextTargets refuses to extend targets not signed by the publisher, and bad entries', () => {
  const p = product();
  const foreign = resign(MetadataKind.Targets, p.targets, generateKeyPair(), () => {});
  assert.throws(() => nextTargets({ current: foreign, publisher: p.publisher, add: {}, now }), /not signed by your publisher key/);
  assert.throws(() => nextTargets({ current: { nope: 1 }, publisher: p.publisher, add: {}, now }), /malformed/);
  assert.throws(() => nextTargets({ current: p.targets, publisher: p.publisher, add: { '../x': { length: 1, sha256: sha256('x'), custom: {} } }, now }), /relative path/);
  assert.throws(() => nextTargets({ current: p.targets, publisher: p.publisher, add: { x: { length: 1, sha256: 'zz', custom: {} } }, now }), /sha256/);
});

test('snapshot and timestamp carry the exact length and sha256 of the bytes they name', () => {
  const p = product();
  const rootJson = verifyInitialRoot(p.root, p.online, now).json;
  // Non-ASCII text: byte length differs from character length.
  const v2 = nextTargets({ current: p.targets, publisher: p.publisher, add: { 'a.bin': { length: 1, sha256: sha256('a'), custom: { note: 'größe ✓' } } }, now });
  const targets = verifyTargets(rootJson, v2, 2, now);
  const expires = new Date(now.getTime() + 86_400_000);
  const snap = signSnapshot({ version: 5, targetsVersion: 2, targetsJson: targets.json, key: p.snapshot, expires });
  const snapMd = Metadata.fromJSON(MetadataKind.Snapshot, JSON.parse(snap.json));
  const meta = snapMd.signed.meta['targets.json']!;
  assert.equal(meta.version, 2);
  assert.equal(meta.length, Buffer.byteLength(targets.json));
  assert.notEqual(meta.length, targets.json.length);
  assert.equal(meta.hashes?.sha256, sha256(targets.json));
  assert.equal(snap.version, 5);
  assert.equal(snap.expires.getTime(), expires.getTime());

  const ts = signTimestamp({ version: 7, snapshotVersion: 5, snapshotJson: snap.json, key: p.timestamp, expires });
  const tsMd = Metadata.fromJSON(MetadataKind.Timestamp, JSON.parse(ts.json));
  assert.equal(tsMd.signed.snapshotMeta.version, 5);
  assert.equal(tsMd.signed.snapshotMeta.length, Buffer.byteLength(snap.json));
  assert.equal(tsMd.signed.snapshotMeta.hashes?.sha256, sha256(snap.json));

  const root = Metadata.fromJSON(MetadataKind.Root, JSON.parse(rootJson));
  root.verifyDelegate('snapshot', snapMd);
  root.verifyDelegate('timestamp', tsMd);
  assert.throws(() => root.verifyDelegate('timestamp', snapMd));
});

test('online keys: created once with 0600/0700, reused, damaged file refused', async (t) => {
  const dir = await tempDir(t, 'pw-tuf-repo-');
  const first = await loadOrCreateOnlineKeys(dir);
  assert.notEqual(first.snapshot.keyid, first.timestamp.keyid);
  assert.equal((await stat(join(dir, 'keys'))).mode & 0o777, 0o700);
  assert.equal((await stat(join(dir, 'keys', 'online.json'))).mode & 0o777, 0o600);
  assert.deepEqual(await loadOrCreateOnlineKeys(dir), first);

  const [a, b] = await Promise.all([loadOrCreateOnlineKeys(join(dir, 'race')), loadOrCreateOnlineKeys(join(dir, 'race'))]);
  assert.deepEqual(a, b);

  await writeFile(join(dir, 'keys', 'online.json'), '{"type":"patchwire-online-keys","snapshot":{}}');
  await assert.rejects(loadOrCreateOnlineKeys(dir), (err: Error) => err instanceof KeyFileError && /snapshot key is damaged.*restore it from a backup/.test(err.message));
});
