// The ArtifactStore contract (test/contracts/artifacts-contract.ts) over every implementation.
// PATCHWIRE_ARTIFACT_STORES=disk,s3 picks which run (default: disk, the one that needs no server).
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DiskArtifactStore } from '../src/artifacts/disk/disk-artifact-store.js';
import { artifactContract, type ArtifactHarness } from './contracts/artifacts-contract.js';
import { Cleanup } from './helpers/cleanup.js';
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

const implementations: { name: string; harness: () => Promise<ArtifactHarness> }[] = [
  { name: 'disk', harness: diskHarness },
];
const selected = (process.env.PATCHWIRE_ARTIFACT_STORES ?? 'disk').split(',');

for (const impl of implementations) {
  if (selected.includes(impl.name)) artifactContract(impl.name, impl.harness);
}
