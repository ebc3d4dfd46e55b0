// The ArtifactStore contract: every implementation runs the same suite. PATCHWIRE_ARTIFACT_STORES=disk,s3
// picks which run (default: disk, the one that needs no server).
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ArtifactTooLargeError, type ArtifactStore } from '../src/artifacts/artifact-store.js';
import { DiskArtifactStore } from '../src/artifacts/disk/disk-artifact-store.js';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';

/** One empty store; open() may be called again and must see the same artifacts. */
interface ArtifactHarness {
  open(): Promise<ArtifactStore>;
  /** Staged bytes not yet committed or discarded (must be empty after every refused stage). */
  leftovers(): Promise<string[]>;
  cleanup(): Promise<void>;
}

const suite = Cleanup.forSuite();

async function diskHarness(): Promise<ArtifactHarness> {
  const root = await tempDir(suite, 'patchwire-artifacts-');
  const dir = join(root, 'artifacts');
  return {
    open: () => DiskArtifactStore.open(dir),
    leftovers: () => readdir(join(dir, 'tmp')),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

const implementations: { name: string; harness: () => Promise<ArtifactHarness> }[] = [
  { name: 'disk', harness: diskHarness },
];
const selected = (process.env.PATCHWIRE_ARTIFACT_STORES ?? 'disk').split(',');

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** An iterable source in uneven chunks, as an HTTP upload arrives. */
async function* chunked(data: Buffer, size = 7777): AsyncIterable<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

function artifactContract(name: string, makeHarness: () => Promise<ArtifactHarness>): void {
  describe(`ArtifactStore contract: ${name}`, () => {
    let harness: ArtifactHarness;
    let store: ArtifactStore;
    const data = randomBytes(300_000);
    const limit = { maxLength: 1_000_000 };

    beforeEach(async () => {
      harness = await makeHarness();
      store = await harness.open();
    });
    afterEach(() => harness.cleanup());

    it('stage hashes and counts the bytes; commit makes them readable under their hash', async () => {
      const staged = await store.stage(chunked(data), limit);
      assert.equal(staged.sha256, sha256(data));
      assert.equal(staged.length, data.length);
      assert.deepEqual(await readFile(staged.localPath), data, 'localPath holds the bytes for inspection');
      assert.equal(await store.stat(staged.sha256), undefined, 'staged bytes are not visible before commit');
      assert.equal(await staged.commit(), true);
      assert.deepEqual(await store.stat(staged.sha256), { sha256: sha256(data), length: data.length });
      assert.deepEqual(await bytesOf(await store.read(staged.sha256)), data);
      assert.deepEqual(await harness.leftovers(), []);
    });

    it('read honours inclusive byte ranges', async () => {
      const staged = await store.stage(Readable.from([data]), limit);
      await staged.commit();
      for (const [start, end] of [[0, 0], [10, 99], [data.length - 1, data.length - 1], [0, data.length - 1]] as const) {
        assert.deepEqual(await bytesOf(await store.read(staged.sha256, { start, end })), data.subarray(start, end + 1));
      }
    });

    it('discard leaves nothing behind', async () => {
      const staged = await store.stage(chunked(data), limit);
      await staged.discard();
      assert.equal(await store.stat(staged.sha256), undefined);
      assert.deepEqual(await harness.leftovers(), []);
      await assert.rejects(staged.commit(), 'a discarded artifact cannot be committed');
    });

    it('refuses more than maxLength bytes and keeps nothing; exactly maxLength is fine', async () => {
      await assert.rejects(store.stage(chunked(data), { maxLength: data.length - 1 }), ArtifactTooLargeError);
      assert.deepEqual(await harness.leftovers(), []);
      assert.equal(await store.stat(sha256(data)), undefined);
      const staged = await store.stage(chunked(data), { maxLength: data.length });
      assert.equal(staged.length, data.length);
      await staged.discard();
    });

    it('an aborted upload rejects and keeps nothing', async () => {
      const ac = new AbortController();
      async function* slow(): AsyncIterable<Uint8Array> {
        yield data.subarray(0, 1000);
        ac.abort(); // the client went away mid-upload
        yield data.subarray(1000, 2000);
      }
      await assert.rejects(store.stage(slow(), { ...limit, signal: ac.signal }), { name: 'AbortError' });
      assert.deepEqual(await harness.leftovers(), []);
    });

    it('committing bytes that are already stored returns false and keeps them readable', async () => {
      assert.equal(await (await store.stage(chunked(data), limit)).commit(), true);
      const again = await store.stage(chunked(data, 1000), limit);
      assert.equal(await again.commit(), false);
      assert.deepEqual(await bytesOf(await store.read(again.sha256)), data);
      assert.deepEqual(await harness.leftovers(), []);
    });

    it('delete removes an artifact; deleting a missing one is fine', async () => {
      const staged = await store.stage(chunked(data), limit);
      await staged.commit();
      await store.delete(staged.sha256);
      assert.equal(await store.stat(staged.sha256), undefined);
      await assert.rejects(store.read(staged.sha256));
      await store.delete(staged.sha256);
    });

    it('refuses anything but a lower-case sha256 hex digest, so no path can be named', async () => {
      const bad = ['../../etc/passwd', 'A'.repeat(64), 'a'.repeat(63), `${'a'.repeat(62)}/x`, ''];
      for (const s of bad) {
        await assert.rejects(store.stat(s), /sha256/);
        await assert.rejects(store.read(s), /sha256/);
        await assert.rejects(store.delete(s), /sha256/);
      }
    });

    it('artifacts survive reopening, and staged bytes left by a crash are cleared', async () => {
      const kept = await store.stage(chunked(data), limit);
      await kept.commit();
      await store.stage(chunked(data.subarray(0, 5000)), limit); // never committed: a crash
      assert.equal((await harness.leftovers()).length, 1);
      const reopened = await harness.open();
      assert.deepEqual(await harness.leftovers(), []);
      assert.deepEqual(await bytesOf(await reopened.read(kept.sha256)), data);
    });
  });
}

for (const impl of implementations) {
  if (selected.includes(impl.name)) artifactContract(impl.name, impl.harness);
}
