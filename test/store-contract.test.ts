// The Store contract (test/contracts/store-contract.ts) over every implementation.
// PATCHWIRE_STORES=sqlite,postgres picks which run (default: sqlite and sqlite-sighting-worker, the ones that need no server).
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { storeContract, type StoreHarness } from './contracts/store-contract.js';
import { identityContract } from './contracts/identity-contract.js';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';

const suite = Cleanup.forSuite();

/** `sightingWorker`: as `serve` opens it, sightings written by a worker thread with its own connection. */
async function sqliteHarness(sightingWorker = false): Promise<StoreHarness> {
  const root = await tempDir(suite, 'patchwire-store-');
  const file = join(root, 'data', 'patchwire.db');
  return {
    open: () => SqliteStore.open(file, { sightingWorker }),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

const implementations: { name: string; harness: () => Promise<StoreHarness> }[] = [
  { name: 'sqlite', harness: () => sqliteHarness() },
  { name: 'sqlite-sighting-worker', harness: () => sqliteHarness(true) },
];
const selected = (process.env.PATCHWIRE_STORES ?? 'sqlite,sqlite-sighting-worker').split(',');

for (const impl of implementations) {
  if (selected.includes(impl.name)) {
    storeContract(impl.name, impl.harness);
    identityContract(impl.name, impl.harness);
  }
}
