// The Store contract (test/contracts/store-contract.ts) over every implementation.
// PATCHWIRE_STORES=sqlite,postgres picks which run (default: sqlite, the one that needs no server).
import { after } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { storeContract, type StoreHarness } from './contracts/store-contract.js';

const roots: string[] = [];
after(async () => { for (const r of roots) await rm(r, { recursive: true, force: true }); });

async function sqliteHarness(): Promise<StoreHarness> {
  const root = await mkdtemp(join(tmpdir(), 'patchwire-store-'));
  roots.push(root);
  const file = join(root, 'data', 'patchwire.db');
  return {
    open: () => SqliteStore.open(file),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

const implementations: { name: string; harness: () => Promise<StoreHarness> }[] = [
  { name: 'sqlite', harness: sqliteHarness },
];
const selected = (process.env.PATCHWIRE_STORES ?? 'sqlite').split(',');

for (const impl of implementations) {
  if (selected.includes(impl.name)) storeContract(impl.name, impl.harness);
}
