import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, lstat, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { AgentStateError, FolderLockedError } from './errors.js';

/** How long a second command waits for the folder by default before giving up. */
export const DEFAULT_LOCK_WAIT_MS = 10_000;
/** A takeover marker older than this belongs to a process killed while taking over a stale lock. */
const TAKEOVER_STALE_MS = 10_000;

export interface LockHolder {
  pid: number;
  /** The holder's start time as the kernel counts it (/proc/<pid>/stat field 22), to tell a reused pid; null off Linux. */
  startTicks: string | null;
  host: string;
  command: string;
  since: string;
}

export interface LockOptions {
  /** What takes the lock (`check`, `rollback`, `init`, ...), shown to a process that waits. */
  command: string;
  /** How long to wait for a busy folder (default 10 s; 0: fail at once). */
  waitMs?: number;
  signal?: AbortSignal;
}

/**
 * Runs `fn` holding the exclusive lock of an install folder: `.patchwire/lock`, made by link(2)
 * of a fully written temporary file (atomic, fails when the lock exists, so no reader ever sees a
 * half-written lock), holding the holder's pid, kernel start time, host and command. Node has no
 * flock; this scheme survives SIGKILL: a lock whose pid is dead (or reused by another process,
 * told by the start time) is stale and taken over under a `lock.takeover` marker made the same
 * way, so two waiters cannot both take it over. A busy folder is polled until `waitMs`, then
 * FolderLockedError names the holder. Throws AgentStateError when `.patchwire/` is missing.
 */
export async function withFolderLock<T>(meta: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = join(meta, 'lock');
  await acquire(meta, lock, opts);
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

async function acquire(meta: string, lock: string, opts: LockOptions): Promise<void> {
  const until = Date.now() + (opts.waitMs ?? DEFAULT_LOCK_WAIT_MS);
  const me: LockHolder = { pid: process.pid, startTicks: startTicksOf(process.pid), host: hostname(), command: opts.command, since: new Date().toISOString() };
  for (let pause = 25; ; pause = Math.min(pause * 2, 250)) {
    opts.signal?.throwIfAborted();
    if (await linkExclusive(meta, lock, me)) return removeDeadTemps(meta);
    const holder = await readHolder(lock);
    if (holder === 'gone') continue;
    if (holder === null || !isAlive(holder)) {
      await takeOver(meta, lock, holder);
      continue;
    }
    if (Date.now() >= until) {
      throw new FolderLockedError(
        `${meta.replace(/\/\.patchwire$/, '')} is in use by another patchwire process (pid ${holder.pid}, \`${holder.command}\` since ${holder.since}): ` +
          'wait for it to finish (a download can take a while) and try again; two commands at once on one install folder would corrupt it',
        holder.pid,
      );
    }
    await delay(Math.min(pause, Math.max(1, until - Date.now())), undefined, { signal: opts.signal });
  }
}

/** Writes `holder` to a unique temporary file and links it to `target`; false when `target` exists. */
async function linkExclusive(meta: string, target: string, holder: LockHolder): Promise<boolean> {
  const tmp = join(meta, `.lock-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(tmp, JSON.stringify(holder) + '\n');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new AgentStateError(`no agent state in ${meta}: run \`patchwire init\` for this folder first`, meta, { cause: err });
    }
    throw err;
  }
  try {
    await link(tmp, target);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/** Temporary lock files of processes killed between writing and linking them (a tiny window). */
async function removeDeadTemps(meta: string): Promise<void> {
  for (const name of await readdir(meta).catch(() => [] as string[])) {
    const m = /^\.lock-(\d+)-[0-9a-f]{8}$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !isAlive({ pid: Number(m[1]), startTicks: null, host: hostname(), command: '', since: '' })) {
      await rm(join(meta, name), { force: true });
    }
  }
}

/** A lock holds one small JSON line; a larger file is not ours and is not read whole. */
const MAX_LOCK_BYTES = 4096;

/**
 * The lock's holder; null when it is no lock of ours (unreadable, a link, oversized: treated as
 * stale, and removing it removes a link, never its target), 'gone' when it vanished meanwhile.
 * A folder in its place is refused (AgentStateError): nothing of it is removed.
 */
async function readHolder(lock: string): Promise<LockHolder | null | 'gone'> {
  const s = await lstat(lock).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return 'gone' as const;
    throw err;
  });
  if (s === 'gone') return 'gone';
  if (s.isDirectory()) {
    throw new AgentStateError(`${lock} is a folder, not patchwire's lock file: if no patchwire command works on this install folder, remove it (rm -r ${lock}) and try again`, lock);
  }
  if (!s.isFile() || s.size > MAX_LOCK_BYTES) return null;
  try {
    const h = JSON.parse(await readFile(lock, 'utf8')) as LockHolder;
    return Number.isSafeInteger(h.pid) && h.pid > 0 ? h : null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : null;
  }
}

/**
 * Removes a stale lock, once: under the takeover marker, re-reads the lock and removes it only if
 * it is still the stale one read before (another waiter may have taken over and locked meanwhile).
 */
async function takeOver(meta: string, lock: string, stale: LockHolder | null): Promise<void> {
  const marker = `${lock}.takeover`;
  const me: LockHolder = { pid: process.pid, startTicks: startTicksOf(process.pid), host: hostname(), command: 'takeover', since: new Date().toISOString() };
  if (!(await linkExclusive(meta, marker, me))) {
    // A takeover marker of a process killed mid-takeover would block every waiter: age it out.
    const s = await stat(marker).catch(() => undefined);
    if (s && Date.now() - s.mtimeMs > TAKEOVER_STALE_MS) await rm(marker, { force: true });
    await delay(20);
    return;
  }
  try {
    const now = await readHolder(lock);
    if (now !== 'gone' && JSON.stringify(now) === JSON.stringify(stale)) await rm(lock, { force: true });
  } finally {
    await rm(marker, { force: true });
  }
}

/** True while the holder's process runs: same host, pid alive, and (on Linux) the same start time. */
function isAlive(h: LockHolder): boolean {
  // Another host sharing the folder (NFS): its pid cannot be checked here, so it is believed.
  if (h.host !== hostname()) return true;
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const ticks = startTicksOf(h.pid);
  if (ticks === 'zombie') return false;
  return h.startTicks === null || ticks === null || ticks === h.startTicks;
}

/**
 * Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), 'zombie' for a process that
 * has ended but is not yet reaped, or null when unavailable (not Linux).
 */
function startTicksOf(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return 'zombie';
    return fields[19] ?? null;
  } catch {
    return null;
  }
}
