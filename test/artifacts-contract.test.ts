// The ArtifactStore contract (test/contracts/artifacts-contract.ts) over every implementation.
// PATCHWIRE_ARTIFACT_STORES=disk,s3 picks which run (default: disk, the one that needs no server).
import { after } from 'node:test';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskArtifactStore } from '../src/artifacts/disk/disk-artifact-store.js';
import { artifactContract, type ArtifactHarness } from './contracts/artifacts-contract.js';

const roots: string[] = [];
after(async () => { for (const r of roots) await rm(r, { recursive: true, force: true }); });

async function diskHarness(): Promise<ArtifactHarness> {
  const root = await mkdtemp(join(tmpdir(), 'patchwire-artifacts-'));
  roots.push(root);
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
