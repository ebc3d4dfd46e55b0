import { chmod, link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fsyncDir } from '../util/atomic-write.js';
import { generateKeyPair, KeyFileError, type KeyPair } from './keys.js';
import { parseKeyPair } from './key-json.js';

const ONLINE_FILE_TYPE = 'patchwire-online-keys';

export interface OnlineKeyPairs {
  snapshot: KeyPair;
  timestamp: KeyPair;
  /** Signs the delegated `deltas` role: the deltas this server computes. */
  deltas: KeyPair;
}

/** The server's online keys, kept in `<dataDir>/keys/online.json` (mode 0600), created on first use. */
export async function loadOrCreateOnlineKeys(dataDir: string): Promise<OnlineKeyPairs> {
  const dir = join(dataDir, 'keys');
  const file = join(dir, 'online.json');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode only applies to a folder it creates; the keys folder must never be readable by others.
  await chmod(dir, 0o700);
  const existing = await readOnline(file);
  if (existing?.deltas) return existing as OnlineKeyPairs;
  // A key file from before deltas existed keeps its snapshot and timestamp keys and gains a
  // deltas key (written to a new file, then renamed over the old one).
  const keys = existing ? { ...existing, deltas: generateKeyPair() } : generateOnlineKeys();
  // Write a complete temporary file, then link() it into place: link fails if another server
  // process created the file meanwhile, so two processes never end up with different keys.
  const tmp = join(dir, `.online.json.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(serializeOnlineKeys(keys));
    await fh.sync();
    await fh.close();
    if (existing) await rename(tmp, file);
    else await link(tmp, file);
  } catch (err) {
    await fh.close().catch(() => {});
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      await unlink(tmp).catch(() => {});
      throw new KeyFileError(`cannot create the server's online key file ${file}: ${(err as Error).message} (check that the data folder is writable)`);
    }
  } finally {
    await unlink(tmp).catch(() => {});
  }
  fsyncDir(dir);
  const stored = await readOnline(file);
  if (!stored?.deltas) throw new KeyFileError(`the server's online key file ${file} vanished while it was created; start the server again`);
  return stored as OnlineKeyPairs;
}

/** New online keys (snapshot, timestamp, deltas). */
export function generateOnlineKeys(): OnlineKeyPairs {
  return { snapshot: generateKeyPair(), timestamp: generateKeyPair(), deltas: generateKeyPair() };
}

/** The online key file's text (private keys included: keep it where only the server reads it). */
export function serializeOnlineKeys(keys: OnlineKeyPairs): string {
  return JSON.stringify({ type: ONLINE_FILE_TYPE, snapshot: toJson(keys.snapshot), timestamp: toJson(keys.timestamp), deltas: toJson(keys.deltas) }, null, 2) + '\n';
}

function toJson(pair: KeyPair): Record<string, string> {
  return { keyid: pair.keyid, public: pair.publicHex, private: pair.privatePem };
}

/** The stored keys, or undefined when the file does not exist yet. */
async function readOnline(file: string): Promise<{ snapshot: KeyPair; timestamp: KeyPair; deltas?: KeyPair } | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyFileError(`cannot read the server's online key file ${file}: ${(err as Error).message} (check its permissions)`);
  }
  return parseOnlineKeys(text, file);
}

/**
 * Online keys from the text `serializeOnlineKeys` made (`where` names its home in messages); a
 * damaged text throws KeyFileError. `deltas` is absent in files from before deltas existed.
 */
export function parseOnlineKeys(text: string, where: string): { snapshot: KeyPair; timestamp: KeyPair; deltas?: KeyPair } {
  // Every product's root names these keys: a damaged file must stop the server, never be replaced.
  const todo = 'restore it from a backup; new keys would need a root rotation of every product';
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new KeyFileError(`the server's online key file ${where} is not valid JSON (${todo})`);
  }
  if (json?.type !== ONLINE_FILE_TYPE) throw new KeyFileError(`${where} is not a patchwire online key file (${todo})`);
  const snapshot = parseKeyPair(json.snapshot);
  const timestamp = parseKeyPair(json.timestamp);
  if (typeof snapshot === 'string') throw new KeyFileError(`${where}: snapshot key is damaged: ${snapshot} (${todo})`);
  if (typeof timestamp === 'string') throw new KeyFileError(`${where}: timestamp key is damaged: ${timestamp} (${todo})`);
  if (json.deltas === undefined) return { snapshot, timestamp };
  const deltas = parseKeyPair(json.deltas);
  if (typeof deltas === 'string') throw new KeyFileError(`${where}: deltas key is damaged: ${deltas} (${todo})`);
  return { snapshot, timestamp, deltas };
}
