import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Metadata, MetadataKind } from '@tufjs/models';
import { generateKeyPair, signerFor, type KeyPair } from '../src/tuf/keys.js';
import { createInitialMetadata, nextTargets, type NewTarget, type SignedJson } from '../src/tuf/publisher.js';
import { signSnapshot, signTimestamp, verifyInitialRoot, verifyTargets } from '../src/tuf/repository.js';
import { TrustedRepository, TufVerificationError } from '../src/agent/tuf-client.js';
import type { Owner } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const DAY = 86_400_000;

/** A product's repository as the server would keep it: exact bytes per served path. */
class Repo {
  readonly files = new Map<string, string | Buffer>();
  publisher: KeyPair;
  snapshotKey: KeyPair;
  timestampKey: KeyPair;
  rootJson: string;
  rootVersion = 1;
  targets: SignedJson;
  targetsVersion = 1;
  targetsJson: string;
  snapshotVersion = 0;
  snapshotJson = '';
  timestampVersion = 0;

  constructor(keys?: { publisher: KeyPair; snapshot: KeyPair; timestamp: KeyPair }, readonly now = new Date()) {
    this.publisher = keys?.publisher ?? generateKeyPair();
    this.snapshotKey = keys?.snapshot ?? generateKeyPair();
    this.timestampKey = keys?.timestamp ?? generateKeyPair();
    const online = { snapshot: this.snapshotKey.publicHex, timestamp: this.timestampKey.publicHex };
    const initial = createInitialMetadata({ publisher: this.publisher, online, now });
    this.rootJson = verifyInitialRoot(initial.root, online, now).json;
    this.files.set('/tuf/1.root.json', this.rootJson);
    this.targets = initial.targets;
    this.targetsJson = verifyTargets(this.rootJson, initial.targets, 1, now).json;
    this.files.set('/tuf/1.targets.json', this.targetsJson);
    this.resnapshot();
  }

  publish(add: Record<string, NewTarget>): void {
    this.targets = nextTargets({ current: this.targets, publisher: this.publisher, add, now: this.now });
    this.targetsVersion += 1;
    this.targetsJson = verifyTargets(this.rootJson, this.targets, this.targetsVersion, this.now).json;
    this.files.set(`/tuf/${this.targetsVersion}.targets.json`, this.targetsJson);
    this.resnapshot();
  }

  resnapshot(): void {
    this.snapshotVersion += 1;
    const snap = signSnapshot({ version: this.snapshotVersion, targetsVersion: this.targetsVersion, targetsJson: this.targetsJson, key: this.snapshotKey, expires: new Date(this.now.getTime() + DAY) });
    this.snapshotJson = snap.json;
    this.files.set(`/tuf/${this.snapshotVersion}.snapshot.json`, snap.json);
    this.retimestamp();
  }

  /** Signs the next timestamp; returns its bytes (so a test can replay an old one). */
  retimestamp(expires = new Date(this.now.getTime() + DAY)): string {
    this.timestampVersion += 1;
    const ts = signTimestamp({ version: this.timestampVersion, snapshotVersion: this.snapshotVersion, snapshotJson: this.snapshotJson, key: this.timestampKey, expires });
    this.files.set('/tuf/timestamp.json', ts.json);
    return ts.json;
  }

  /** Root v(n+1) with a new timestamp key, signed by the publisher (old and new root key). */
  rotateTimestampKey(): void {
    const newKey = generateKeyPair();
    const current = JSON.parse(this.rootJson) as { signed: { version: number; keys: Record<string, unknown>; roles: { timestamp: { keyids: string[] } } } };
    const signed = current.signed;
    const oldId = signed.roles.timestamp.keyids[0]!;
    delete signed.keys[oldId];
    signed.keys[newKey.keyid] = { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: newKey.publicHex } };
    signed.roles.timestamp.keyids = [newKey.keyid];
    signed.version += 1;
    const md = Metadata.fromJSON(MetadataKind.Root, current as never);
    md.sign(signerFor(this.publisher), false);
    this.rootVersion = signed.version;
    this.rootJson = JSON.stringify(md.toJSON());
    this.files.set(`/tuf/${this.rootVersion}.root.json`, this.rootJson);
    this.timestampKey = newKey;
    this.retimestamp();
  }
}

async function serve(t: { after(fn: () => Promise<void>): void }, repo: { files: Map<string, string | Buffer> }): Promise<string> {
  const server: Server = createServer((req, res) => {
    const body = repo.files.get(req.url ?? '');
    if (body === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.after(() => new Promise<void>((ok) => { server.closeAllConnections(); server.close(() => ok()); }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/tuf/`;
}

async function agentDir(t: Owner, rootJson: string): Promise<{ parent: string; dir: string }> {
  const parent = await tempDir(t, 'pw-tuf-client-');
  const dir = join(parent, 'tuf');
  await mkdir(dir);
  await writeFile(join(dir, 'root.json'), rootJson);
  return { parent, dir };
}

async function snapshotDir(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of (await readdir(dir)).sort()) out.set(name, await readFile(join(dir, name)));
  return out;
}

/** Runs `fn`, expects a TufVerificationError matching `message`, and checks nothing in `dir` changed. */
async function assertRefused(dir: string, parent: string, fn: () => Promise<unknown>, message: RegExp): Promise<void> {
  const before = await snapshotDir(dir);
  await assert.rejects(fn(), (err: unknown) => {
    assert.ok(err instanceof TufVerificationError, `expected TufVerificationError, got ${String(err)}`);
    assert.match(err.message, message);
    assert.ok(err.cause !== undefined);
    return true;
  });
  assert.deepEqual(await snapshotDir(dir), before);
  assert.deepEqual((await readdir(parent)).filter((n) => n.includes('.work-')), [], 'scratch folder removed');
}

const custom = (version: string) => ({ patchwire: { kind: 'full', product: 'acme', channel: 'stable', version, treeHash: sha256(version), treeBytes: 3, treeFiles: 1 } });
const release = (version: string): Record<string, NewTarget> => ({ [`stable/${version}.tar.gz`]: { length: 100, sha256: sha256(version), custom: custom(version) } });

test('getTarget returns the verified target with its signed custom field', async (t) => {
  const repo = new Repo();
  repo.publish(release('1.0.0'));
  const url = await serve(t, repo);
  const { dir, parent } = await agentDir(t, repo.rootJson);
  const trusted = new TrustedRepository({ metadataDir: dir, metadataBaseUrl: url });

  const target = await trusted.getTarget('stable/1.0.0.tar.gz');
  assert.deepEqual(target, { path: 'stable/1.0.0.tar.gz', length: 100, sha256: sha256('1.0.0'), custom: custom('1.0.0') });
  assert.equal(await trusted.getTarget('stable/9.9.9.tar.gz'), undefined);
  assert.deepEqual([...(await snapshotDir(dir)).keys()], ['root.json', 'snapshot.json', 'targets.json', 'timestamp.json']);
  assert.equal(await readFile(join(dir, 'targets.json'), 'utf8'), repo.targetsJson);
  assert.deepEqual((await readdir(parent)).filter((n) => n.includes('.work-')), []);

  repo.publish(release('1.1.0'));
  assert.equal((await trusted.getTarget('stable/1.1.0.tar.gz'))?.custom.patchwire !== undefined, true);
});

test('attacks are refused and leave the trusted metadata unchanged', async (t) => {
  const repo = new Repo();
  repo.publish(release('1.0.0'));
  const url = await serve(t, repo);
  const { dir, parent } = await agentDir(t, repo.rootJson);
  const trusted = new TrustedRepository({ metadataDir: dir, metadataBaseUrl: url });
  await trusted.getTarget('stable/1.0.0.tar.gz');

  // A stale scratch folder from an earlier crash is cleaned up.
  await mkdir(`${dir}.work-deadbeef`);

  // Tampered targets: same length, different hash of a target.
  repo.publish(release('1.1.0'));
  const good = repo.targetsJson;
  const evil = good.replace(sha256('1.1.0'), sha256('evil!'));
  assert.equal(evil.length, good.length);
  repo.files.set(`/tuf/${repo.targetsVersion}.targets.json`, evil);
  await assertRefused(dir, parent, () => trusted.getTarget('stable/1.1.0.tar.gz'), /do not match the signed hash/);
  // Tampered and longer: refused before it is even read whole.
  repo.files.set(`/tuf/${repo.targetsVersion}.targets.json`, good + ' ');
  await assertRefused(dir, parent, () => trusted.getTarget('stable/1.1.0.tar.gz'), /too large/);
  repo.files.set(`/tuf/${repo.targetsVersion}.targets.json`, good);
  assert.ok(await trusted.getTarget('stable/1.1.0.tar.gz'));

  // Rollback: an older timestamp after a newer one was trusted.
  const old = repo.files.get('/tuf/timestamp.json')!;
  repo.retimestamp();
  assert.ok(await trusted.getTarget('stable/1.1.0.tar.gz'));
  repo.files.set('/tuf/timestamp.json', old);
  await assertRefused(dir, parent, () => trusted.getTarget('stable/1.1.0.tar.gz'), /rollback/);

  // Freeze: a timestamp that expired.
  repo.retimestamp(new Date(Date.now() - 3_600_000));
  await assertRefused(dir, parent, () => trusted.getTarget('stable/1.1.0.tar.gz'), /expired/);

  // Endless data: a timestamp larger than any timestamp may be.
  repo.files.set('/tuf/timestamp.json', Buffer.alloc(1_000_000, 0x20));
  await assertRefused(dir, parent, () => trusted.getTarget('stable/1.1.0.tar.gz'), /too large/);

  // Signed by a key the root does not name.
  const realKey = repo.timestampKey;
  repo.timestampKey = generateKeyPair();
  repo.retimestamp();
  await assertRefused(dir, parent, () => trusted.getTarget('stable/1.1.0.tar.gz'), /bad signature/);
  repo.timestampKey = realKey;

  // A forged root v2 (not signed by the trusted root key).
  const forged = new Repo();
  forged.rotateTimestampKey();
  repo.files.set('/tuf/2.root.json', forged.files.get('/tuf/2.root.json')!);
  await assertRefused(dir, parent, () => trusted.getTarget('stable/1.1.0.tar.gz'), /bad signature/);
});

test('a root rotation via 2.root.json is accepted and the old timestamp key is revoked', async (t) => {
  const repo = new Repo();
  repo.publish(release('1.0.0'));
  const url = await serve(t, repo);
  const { dir, parent } = await agentDir(t, repo.rootJson);
  const trusted = new TrustedRepository({ metadataDir: dir, metadataBaseUrl: url });
  await trusted.getTarget('stable/1.0.0.tar.gz');

  const oldKey = repo.timestampKey;
  repo.rotateTimestampKey();
  assert.ok(await trusted.getTarget('stable/1.0.0.tar.gz'));
  assert.equal(await readFile(join(dir, 'root.json'), 'utf8'), repo.rootJson);
  assert.equal(JSON.parse(await readFile(join(dir, 'root.json'), 'utf8')).signed.version, 2);

  repo.timestampKey = oldKey;
  repo.retimestamp();
  await assertRefused(dir, parent, () => trusted.getTarget('stable/1.0.0.tar.gz'), /bad signature/);
});

test('resetFreshness keeps the trusted root so a moved-to server can start its counters anew', async (t) => {
  const now = new Date();
  const a = new Repo(undefined, now);
  for (const v of ['1.0.0', '1.1.0', '1.2.0']) a.publish(release(v));
  const urlA = await serve(t, a);
  const { dir, parent } = await agentDir(t, a.rootJson);
  await new TrustedRepository({ metadataDir: dir, metadataBaseUrl: urlA }).getTarget('stable/1.2.0.tar.gz');

  // Server B: same product keys and root, but its own fresh version counters.
  const b = new Repo({ publisher: a.publisher, snapshot: a.snapshotKey, timestamp: a.timestampKey }, now);
  assert.equal(b.rootJson, a.rootJson);
  b.publish(release('1.2.0'));
  const onB = new TrustedRepository({ metadataDir: dir, metadataBaseUrl: await serve(t, b) });
  await assertRefused(dir, parent, () => onB.getTarget('stable/1.2.0.tar.gz'), /rollback/);

  const root = await readFile(join(dir, 'root.json'));
  await onB.resetFreshness();
  assert.deepEqual(await snapshotDir(dir), new Map([['root.json', root]]));
  await onB.resetFreshness();
  assert.equal((await onB.getTarget('stable/1.2.0.tar.gz'))?.sha256, sha256('1.2.0'));
});

test('an aborted signal stops getTarget without touching the metadata', async (t) => {
  const repo = new Repo();
  const { dir } = await agentDir(t, repo.rootJson);
  const trusted = new TrustedRepository({ metadataDir: dir, metadataBaseUrl: await serve(t, repo) });
  const controller = new AbortController();
  controller.abort();
  const before = await snapshotDir(dir);
  await assert.rejects(trusted.getTarget('x', controller.signal), { name: 'AbortError' });
  assert.deepEqual(await snapshotDir(dir), before);
});

test('a missing root.json and an unreachable server are clear errors', async (t) => {
  const parent = await tempDir(t, 'pw-tuf-client-');
  const empty = new TrustedRepository({ metadataDir: join(parent, 'tuf'), metadataBaseUrl: 'http://127.0.0.1:9/tuf/' });
  await assert.rejects(empty.getTarget('x'), (err: Error) => err instanceof TufVerificationError && /no trusted root\.json.*patchwire init/.test(err.message));

  const repo = new Repo();
  const { dir } = await agentDir(t, repo.rootJson);
  const down = new TrustedRepository({ metadataDir: dir, metadataBaseUrl: 'http://127.0.0.1:9/tuf/' });
  await assert.rejects(down.getTarget('x'), (err: Error) => err instanceof TufVerificationError && /could not be reached/.test(err.message));
});
