import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Store } from '../store/store.js';
import type { ArtifactStore } from '../artifacts/artifact-store.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { DiskArtifactStore } from '../artifacts/disk/disk-artifact-store.js';
import type { Clock } from './clock.js';
import { ServerConfigError } from './config-error.js';

export interface StorageOptions {
  dataDir: string;
  /** `--db`: `sqlite:` or a path (default `<data>/patchwire.db`). */
  db?: string;
  /** `--store`: `file:` or a path (default `<data>/artifacts`). */
  artifactStore?: string;
  /** The time device writes are stamped with. */
  clock: Clock;
}

export interface Storage {
  store: Store;
  artifacts: ArtifactStore;
}

type Opener<T> = (spec: string, o: StorageOptions) => Promise<T>;
/** A backend that opens the spec, or one that is planned and refused with this message. */
type Backend<T> = Opener<T> | { planned: (spec: string) => string };

/**
 * Backends by the scheme of `--db`, first match wins. A second backend replaces its `planned`
 * row; the last row takes `sqlite:` and any plain path.
 */
const STORES: Array<[RegExp, Backend<Store>]> = [
  [/^postgres(ql)?:\/\//, { planned: () => '--db postgres:// is not supported yet (planned); leave --db out to use the embedded SQLite store' }],
  [/^/, (spec, o) => SqliteStore.open(spec === 'sqlite:' ? join(o.dataDir, 'patchwire.db') : resolve(spec.replace(/^sqlite:/, '')), { now: o.clock, sightingWorker: true })],
];

/** Backends by the scheme of `--store`: `file:` or a plain path (no other colon); s3:// next. */
const ARTIFACT_STORES: Array<[RegExp, Backend<ArtifactStore>]> = [
  [/^(file:)?[^:]*$/, (spec) => DiskArtifactStore.open(resolve(spec.replace(/^file:/, '')))],
  [/^/, { planned: (spec) => `--store ${spec} is not supported yet (planned: s3://); leave it out to keep artifacts under --data` }],
];

function pick<T>(table: Array<[RegExp, Backend<T>]>, spec: string): Opener<T> {
  const found = table.find(([re]) => re.test(spec))![1];
  if (typeof found !== 'function') throw new ServerConfigError(found.planned(spec));
  return found;
}

/**
 * Opens the Store `--db` names (migrated) and the ArtifactStore `--store` names: SQLite and files
 * under the data folder by default. Both are checked before anything is created.
 */
export async function openStorage(o: StorageOptions): Promise<Storage> {
  const artifactSpec = o.artifactStore ?? join(o.dataDir, 'artifacts');
  const dbSpec = o.db ?? 'sqlite:';
  const openArtifacts = pick(ARTIFACT_STORES, artifactSpec);
  const openStore = pick(STORES, dbSpec);
  await mkdir(o.dataDir, { recursive: true });
  const store = await openStore(dbSpec, o);
  try {
    await store.migrate();
    return { store, artifacts: await openArtifacts(artifactSpec, o) };
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}
