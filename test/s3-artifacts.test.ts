// What the S3 ArtifactStore does beyond the shared contract (test/contracts/artifacts-contract.ts):
// multipart uploads, aborts that leave nothing, commit's fallback when the server ignores
// If-None-Match, and `--store s3://` specs and start-up checks that fail with what to do. All
// against a real s3rver on 127.0.0.1.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { PART_SIZE, S3ArtifactStore, type WithLock } from '../src/artifacts/s3/s3-artifact-store.js';
import { parseS3Location, s3CredentialsFromEnv } from '../src/artifacts/s3/s3-location.js';
import { ArtifactTooLargeError } from '../src/artifacts/errors.js';
import { openStorage } from '../src/server/open-storage.js';
import { ServerConfigError } from '../src/server/config-error.js';
import { systemClock } from '../src/server/clock.js';
import { Cleanup } from './helpers/cleanup.js';
import { freePort } from './helpers/ports.js';
import { S3RVER_CREDENTIALS, startS3rver, type RunningS3 } from './helpers/s3rver.js';
import { tempDir } from './helpers/temp-dir.js';

const suite = Cleanup.forSuite();
let s3: RunningS3;
let client: S3Client;
before(async () => {
  s3 = await startS3rver(suite);
  client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
  suite.after(() => client.destroy());
});

let runs = 0;
async function openStore(o: { withLock?: WithLock } = {}): Promise<{ store: S3ArtifactStore; prefix: string }> {
  const prefix = `unit-${++runs}/`;
  const store = await S3ArtifactStore.open({ location: { bucket: 'patchwire', prefix, endpoint: s3.endpoint, region: 'us-east-1' }, credentials: S3RVER_CREDENTIALS, ...o });
  suite.after(() => store.close());
  return { store, prefix };
}

const keysUnder = async (prefix: string): Promise<string[]> =>
  ((await client.send(new ListObjectsV2Command({ Bucket: 'patchwire', Prefix: prefix }))).Contents ?? []).map((o) => o.Key!);

async function* chunked(data: Buffer, size = 1024 * 1024): AsyncIterable<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

describe('S3ArtifactStore', () => {
  it('uploads an artifact over 16 MiB in 8 MiB parts (multipart) and reads it back whole and by range', async () => {
    const { store, prefix } = await openStore();
    const data = randomBytes(2 * PART_SIZE + 123_457);
    const mark = s3.seen.length;
    const staged = await store.stage(chunked(data), { maxLength: data.length });
    assert.equal(staged.sha256, createHash('sha256').update(data).digest('hex'));
    const requests = s3.seen.slice(mark);
    assert.equal(requests.filter((r) => r.method === 'POST' && r.url.includes('uploads')).length, 1, 'one multipart upload started');
    assert.equal(requests.filter((r) => r.method === 'PUT' && r.url.includes('partNumber=')).length, 3, 'three parts: 8 MiB, 8 MiB and the rest');
    assert.equal(await staged.commit(), true);
    assert.deepEqual(await keysUnder(`${prefix}staging/`), [], 'the staged object is gone after commit');
    assert.deepEqual(await store.stat(staged.sha256), { sha256: staged.sha256, length: data.length });
    const back: Buffer[] = [];
    for await (const c of await store.read(staged.sha256)) back.push(c as Buffer);
    assert.ok(Buffer.concat(back).equals(data));
    const part: Buffer[] = [];
    for await (const c of await store.read(staged.sha256, { start: PART_SIZE - 2, end: PART_SIZE + 1 })) part.push(c as Buffer);
    assert.deepEqual(Buffer.concat(part), data.subarray(PART_SIZE - 2, PART_SIZE + 2), 'a range across a part boundary');
  });

  it('a multipart upload that grows too large, or is aborted, is abandoned: nothing staged, the upload aborted', async () => {
    const { store, prefix } = await openStore();
    const data = randomBytes(2 * PART_SIZE + 10);
    for (const failing of ['too large', 'aborted'] as const) {
      const mark = s3.seen.length;
      const ac = new AbortController();
      const partSent = () => s3.seen.slice(mark).some((r) => r.url.includes('partNumber=1'));
      let sent = 0;
      async function* source(): AsyncIterable<Uint8Array> {
        for await (const c of chunked(data)) {
          // Past the first part, wait until it is on its way, so the failure hits a multipart upload under way.
          for (let i = 0; sent > PART_SIZE && !partSent() && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
          if (failing === 'aborted' && partSent()) ac.abort();
          sent += c.length;
          yield c;
        }
      }
      const staging = store.stage(source(), { maxLength: failing === 'too large' ? PART_SIZE + 2 * 1024 * 1024 + 5 : data.length, signal: ac.signal });
      if (failing === 'too large') await assert.rejects(staging, ArtifactTooLargeError);
      else await assert.rejects(staging, { name: 'AbortError' });
      const requests = s3.seen.slice(mark);
      const uploadId = /uploadId=([^&]+)/.exec(requests.find((r) => r.url.includes('partNumber='))?.url ?? '')?.[1];
      assert.ok(uploadId, `${failing}: a multipart upload had begun`);
      // s3rver itself answers AbortMultipartUpload with 405 (not implemented); S3 removes the parts.
      assert.ok(requests.some((r) => r.method === 'DELETE' && r.url.includes(`uploadId=${uploadId}`)), `${failing}: the multipart upload was aborted`);
      assert.deepEqual(await keysUnder(`${prefix}staging/`), [], `${failing}: no staged object left`);
    }
    assert.deepEqual(await keysUnder(`${prefix}artifacts/`), []);
  });

  it('s3rver ignores If-None-Match, so commits fall back to HeadObject + copy under the lock: two stores sharing one lock create a hash once', async () => {
    // Two stores on one bucket stand for two server processes; the shared lock for the database's.
    const tails = new Map<string, Promise<unknown>>();
    const shared: WithLock = async (name, fn) => {
      const run = (tails.get(name) ?? Promise.resolve()).then(fn, fn);
      tails.set(name, run.catch(() => {}));
      return run;
    };
    const a = await openStore({ withLock: shared });
    const b = await S3ArtifactStore.open({ location: a.store.location, credentials: S3RVER_CREDENTIALS, withLock: shared, shared: true });
    suite.after(() => b.close());
    assert.equal(a.store.conditionalCommits, false, 'the probe found that s3rver ignores If-None-Match');
    const data = randomBytes(50_000);
    const staged = await Promise.all([a.store, b, a.store, b].map((s) => s.stage(Readable.from([data]), { maxLength: data.length })));
    const created = await Promise.all(staged.map((s) => s.commit()));
    assert.deepEqual(created.filter(Boolean), [true]);
    assert.deepEqual(await keysUnder(`${a.prefix}staging/`), []);
  });

  it('a store opened as shared keeps staged objects younger than a day (another process may be uploading them)', async () => {
    const { store, prefix } = await openStore();
    await store.stage(Readable.from([randomBytes(1000)]), { maxLength: 1000 }); // in progress elsewhere
    const other = await S3ArtifactStore.open({ location: store.location, credentials: S3RVER_CREDENTIALS, shared: true });
    other.close();
    assert.equal((await keysUnder(`${prefix}staging/`)).length, 1);
  });
});

describe('--store s3:// specs and start-up checks', () => {
  const env = { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'very-secret-key' };

  it('parses bucket, prefix, endpoint and region (path-style with an endpoint; AWS_REGION as fallback)', () => {
    assert.deepEqual(parseS3Location('s3://my-bucket/a/b/?endpoint=http://127.0.0.1:9000&region=eu-west-1', {}),
      { bucket: 'my-bucket', prefix: 'a/b/', endpoint: 'http://127.0.0.1:9000', region: 'eu-west-1' });
    assert.deepEqual(parseS3Location('s3://my-bucket', { AWS_REGION: 'us-east-2' }), { bucket: 'my-bucket', prefix: '', region: 'us-east-2' });
    assert.deepEqual(s3CredentialsFromEnv({ ...env, AWS_SESSION_TOKEN: 'tok' }), { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'very-secret-key', sessionToken: 'tok' });
  });

  it('refuses a malformed spec with what is wrong and how to write it, never echoing a credential', () => {
    const cases: Array<[string, RegExp]> = [
      ['s3://', /not an S3 bucket name/],
      ['s3://Bad_Bucket?region=us-east-1', /not an S3 bucket name/],
      ['s3://key:very-secret-key@bucket?region=us-east-1', /credentials do not go in the URL; set AWS_ACCESS_KEY_ID/],
      ['s3://bucket/../x?region=us-east-1', /prefix segment '\.\.'/],
      ['s3://bucket?region=us-east-1&secret=very-secret-key', /unknown parameter 'secret'/],
      ['s3://bucket?endpoint=ftp://127.0.0.1:21&region=us-east-1', /endpoint must be http\(s\):\/\/HOST\[:PORT\]/],
      ['s3://bucket?endpoint=http://u:very-secret-key@127.0.0.1:9000&region=us-east-1', /endpoint must be/],
      ['s3://bucket?endpoint=http://127.0.0.1:9000', /no region: add &region=REGION/],
      ['s3://bucket?region=us-east-1&region=eu-west-1', /'region' is given twice/],
    ];
    for (const [spec, message] of cases) {
      assert.throws(() => parseS3Location(spec, {}), (err: Error) => {
        assert.match(err.message, message, spec);
        assert.match(err.message, /write it as s3:\/\/BUCKET/);
        assert.doesNotMatch(err.message, /very-secret-key/, 'no secret in the message');
        return true;
      });
    }
  });

  const open = async (t: { after(fn: () => unknown): void }, spec: string, e: NodeJS.ProcessEnv) => {
    const dataDir = join(await tempDir(t, 'pw-s3-open-'), 'data');
    const storage = openStorage({ dataDir, artifactStore: spec, env: e, clock: systemClock });
    return { storage, dataDir };
  };

  it('missing credentials or a bad spec: ServerConfigError before anything is created', async (t) => {
    for (const [spec, e, message] of [
      [`s3://patchwire?endpoint=${s3.endpoint}&region=us-east-1`, {}, /needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/],
      ['s3://patchwire?endpont=x', env, /unknown parameter 'endpont'/],
      ['gs://bucket', env, /is not a store patchwire knows: give file:PATH, a path, or s3:\/\//],
    ] as const) {
      const { storage, dataDir } = await open(t, spec, e);
      await assert.rejects(storage, (err: Error) => err instanceof ServerConfigError && message.test(err.message));
      assert.equal(existsSync(dataDir), false, `${spec}: nothing created`);
    }
  });

  it('a missing bucket, refused credentials or an unreachable endpoint: ServerConfigError saying what to do', async (t) => {
    const closed = await freePort();
    for (const [spec, e, message] of [
      [`s3://no-such-bucket?endpoint=${s3.endpoint}&region=us-east-1`, s3.env, /the bucket no-such-bucket does not exist; create it first/],
      [`s3://patchwire?endpoint=${s3.endpoint}&region=us-east-1`, env, /access to the bucket was refused \(403\); check AWS_ACCESS_KEY_ID/],
      [`s3://patchwire?endpoint=http://127.0.0.1:${closed}&region=us-east-1`, s3.env, /cannot reach the S3 endpoint .*; check that it runs and that endpoint= is right/],
    ] as const) {
      const { storage } = await open(t, spec, e);
      await assert.rejects(storage, (err: Error) => {
        assert.ok(err instanceof ServerConfigError, `${spec}: ${err.message}`);
        assert.match(err.message, message);
        assert.doesNotMatch(err.message, /very-secret-key|S3RVER/, 'no secret in the message');
        return true;
      });
    }
  });
});
