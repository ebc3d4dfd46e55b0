import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';

const INSTALL_ID_RE = /^[0-9a-f]{16}$/;

/**
 * The random id of this install folder (`.patchwire/install-id`, 16 hex digits), made once. The
 * device id is the host's MAC, the same for every folder on the host; this id tells two folders
 * of one product apart, so the server can warn that they share one device record. Kept outside
 * state.json so the state's frozen format is unchanged; a folder made before it gets one on its
 * next check. Call it holding the folder lock.
 */
export async function ensureInstallId(meta: string): Promise<string> {
  const file = join(meta, 'install-id');
  const text = await readFile(file, 'utf8').then((t) => t.trim(), () => '');
  if (INSTALL_ID_RE.test(text)) return text;
  const id = randomBytes(8).toString('hex');
  await writeFileAtomic(file, `${id}\n`, 0o600);
  return id;
}
