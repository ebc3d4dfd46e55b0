// The Store contract (test/contracts/store-contract.ts) over every implementation.
// PATCHWIRE_STORES=sqlite,postgres picks which run (default: both). The postgres run needs
// PostgreSQL on 127.0.0.1:5432 (test/helpers/postgres.ts) and fails, saying how to start it, without.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import { storeContract, type StoreHarness } from './contracts/store-contract.js';
import { identityContract } from './contracts/identity-contract.js';
import { Cleanup } from './helpers/cleanup.js';
import { tempDir } from './helpers/temp-dir.js';
import { tempPgDatabase } from './helpers/postgres.js';

const suite = Cleanup.forSuite();

async function sqliteHarness(): Promise<StoreHarness> {
  const root = await tempDir(suite, 'patchwire-store-');
  const file = join(root, 'data', 'patchwire.db');
  return {
    open: () => SqliteStore.open(file),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

async function postgresHarness(): Promise<StoreHarness> {
  const cleanup = new Cleanup();
  const url = await tempPgDatabase(cleanup);
  return { open: () => PostgresStore.open(url), cleanup: () => cleanup.run() };
}

const implementations: { name: string; harness: () => Promise<StoreHarness> }[] = [
  { name: 'sqlite', harness: sqliteHarness },
  { name: 'postgres', harness: postgresHarness },
];
const selected = (process.env.PATCHWIRE_STORES ?? 'sqlite,postgres').split(',');

for (const impl of implementations) {
  if (selected.includes(impl.name)) {
    storeContract(impl.name, impl.harness);
    identityContract(impl.name, impl.harness);
  }
}
