// The ArtifactStore contract (test/contracts/artifacts-contract.ts) over every implementation.
// PATCHWIRE_ARTIFACT_STORES=disk,s3 picks which run (default: both; s3 runs against a real s3rver the
// test starts on 127.0.0.1).
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { DiskArtifactStore } from '../src/artifacts/disk/disk-artifact-store.js';
import { S3ArtifactStore } from '../src/artifacts/s3/s3-artifact-store.js';
import { artifactContract, type ArtifactHarness } from './contracts/artifacts-contract.js';
import { Cleanup } from './helpers/cleanup.js';
import { S3RVER_CREDENTIALS, startS3rver, type RunningS3 } from './helpers/s3rver.js';
import { tempDir } from './helpers/temp-dir.js';

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

let s3: RunningS3 | undefined;
let s3Runs = 0;

/** One s3rver for the file; each harness a prefix of its own in its bucket (so stores start empty). */
async function s3Harness(): Promise<ArtifactHarness> {
  s3 ??= await startS3rver(suite);
  const location = { bucket: s3.buckets[0]!, prefix: `run-${++s3Runs}/`, endpoint: s3.endpoint, region: 'us-east-1' };
  const opened: S3ArtifactStore[] = [];
  const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
  return {
    open: async () => {
      const store = await S3ArtifactStore.open({ location, credentials: S3RVER_CREDENTIALS });
      opened.push(store);
      return store;
    },
    leftovers: async () => {
      const res = await client.send(new ListObjectsV2Command({ Bucket: location.bucket, Prefix: `${location.prefix}staging/` }));
      return (res.Contents ?? []).map((o) => o.Key!);
    },
    cleanup: async () => {
      for (const store of opened) store.close();
      client.destroy();
    },
  };
}

const implementations: { name: string; harness: () => Promise<ArtifactHarness> }[] = [
  { name: 'disk', harness: diskHarness },
  { name: 's3', harness: s3Harness },
];
const selected = (process.env.PATCHWIRE_ARTIFACT_STORES ?? 'disk,s3').split(',');

for (const impl of implementations) {
  if (selected.includes(impl.name)) artifactContract(impl.name, impl.harness);
}
