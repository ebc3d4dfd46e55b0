import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Store } from '../store/store.js';
import type { ArtifactStore } from '../artifacts/artifact-store.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { DiskArtifactStore } from '../artifacts/disk/disk-artifact-store.js';
import { S3ArtifactStore } from '../artifacts/s3/s3-artifact-store.js';
import { parseS3Location, s3CredentialsFromEnv } from '../artifacts/s3/s3-location.js';
import { S3StoreError } from '../artifacts/s3/s3-errors.js';
import type { Clock } from './clock.js';
import { ServerConfigError } from './config-error.js';

export interface StorageOptions {
  dataDir: string;
  /** `--db`: `sqlite:` or a path (default `<data>/patchwire.db`). */
  db?: string;
  /** `--store`: `file:` or a path (default `<data>/artifacts`), or `s3://BUCKET[/PREFIX]?endpoint=URL&region=R`. */
  artifactStore?: string;
  /** Where S3 credentials and AWS_REGION are read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The time device writes are stamped with. */
  clock: Clock;
}

export interface Storage {
  store: Store;
  artifacts: ArtifactStore;
}

/** `store` is the opened database, for an artifact store that shares its coordination. */
type Opener<T> = (spec: string, o: StorageOptions, store?: Store) => Promise<T>;
/**
 * A backend that opens the spec; one whose spec is checked first (`prepare` throws for a bad
 * one, before anything is created) and then opened; or one that is planned and refused.
 */
type Backend<T> = Opener<T> | { prepare: (spec: string, o: StorageOptions) => Opener<T> } | { planned: (spec: string) => string };

/**
 * Backends by the scheme of `--db`, first match wins. A second backend replaces its `planned`
 * row; the last row takes `sqlite:` and any plain path.
 */
const STORES: Array<[RegExp, Backend<Store>]> = [
  [/^postgres(ql)?:\/\//, { planned: () => '--db postgres:// is not supported yet (planned); leave --db out to use the embedded SQLite store' }],
  [/^/, (spec, o) => SqliteStore.open(spec === 'sqlite:' ? join(o.dataDir, 'patchwire.db') : resolve(spec.replace(/^sqlite:/, '')), { now: o.clock })],
];

/** Backends by the scheme of `--store`: `file:` or a plain path (no other colon), `s3://`. */
const ARTIFACT_STORES: Array<[RegExp, Backend<ArtifactStore>]> = [
  [/^(file:)?[^:]*$/, (spec) => DiskArtifactStore.open(resolve(spec.replace(/^file:/, '')))],
  [/^s3:\/\//, { prepare: prepareS3 }],
  [/^/, { planned: (spec) => `--store ${spec.split('?')[0]} is not a store patchwire knows: give file:PATH, a path, or s3://BUCKET[/PREFIX]?endpoint=URL&region=R; leave it out to keep artifacts under --data` }],
];

/** Spec and credentials are checked before anything is created; the bucket itself when opening. */
function prepareS3(spec: string, o: StorageOptions): Opener<ArtifactStore> {
  const env = o.env ?? process.env;
  let location, credentials;
  try {
    location = parseS3Location(spec, env);
    credentials = s3CredentialsFromEnv(env);
  } catch (err) {
    throw new ServerConfigError((err as Error).message);
  }
  return async (_spec, _o, store) => {
    try {
      return await S3ArtifactStore.open({
        location, credentials,
        // Several processes on one database may share the bucket: the database's lock serialises
        // their commits of one hash when the server ignores If-None-Match.
        ...(store ? { shared: store.coordination.shared, withLock: (name, fn) => store.coordination.withLock(name, fn) } : {}),
      });
    } catch (err) {
      if (err instanceof S3StoreError) throw new ServerConfigError(err.message, { cause: err });
      throw err;
    }
  };
}

function pick<T>(table: Array<[RegExp, Backend<T>]>, spec: string, o: StorageOptions): Opener<T> {
  const found = table.find(([re]) => re.test(spec))![1];
  if (typeof found === 'function') return found;
  if ('prepare' in found) return found.prepare(spec, o);
  throw new ServerConfigError(found.planned(spec));
}

/**
 * Opens the Store `--db` names (migrated) and the ArtifactStore `--store` names: SQLite and files
 * under the data folder by default. Both are checked before anything is created.
 */
export async function openStorage(o: StorageOptions): Promise<Storage> {
  const artifactSpec = o.artifactStore ?? join(o.dataDir, 'artifacts');
  const dbSpec = o.db ?? 'sqlite:';
  const openArtifacts = pick(ARTIFACT_STORES, artifactSpec, o);
  const openStore = pick(STORES, dbSpec, o);
  await mkdir(o.dataDir, { recursive: true });
  const store = await openStore(dbSpec, o);
  try {
    await store.migrate();
    return { store, artifacts: await openArtifacts(artifactSpec, o, store) };
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}
