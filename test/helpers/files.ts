import { mkdir, writeFile, readlink, readFile, readdir, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Writes a tree: `{ 'bin/app': 'text', 'lib/x.js': ... }`; values starting with `->` make symlinks. */
export async function writeTree(dir: string, files: Record<string, string>): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [p, content] of Object.entries(files)) {
    const full = join(dir, p);
    await mkdir(dirname(full), { recursive: true });
    if (content.startsWith('->')) await symlink(content.slice(2), full);
    else await writeFile(full, content);
  }
  return dir;
}

/** Where `INSTALL_DIR/current` points (relative link text). */
export function currentLink(installDir: string): Promise<string> {
  return readlink(join(installDir, 'current'));
}

export async function readCurrent(installDir: string, file: string): Promise<string> {
  return readFile(join(installDir, 'current', file), 'utf8');
}

/** A snapshot of every file's bytes below a folder, for "nothing changed" assertions. */
export async function snapshotDir(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  for (const e of entries) {
    const full = join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    if (e.isSymbolicLink()) out.set(full, `-> ${await readlink(full)}`);
    else if (e.isFile()) out.set(full, (await readFile(full)).toString('base64'));
    else if (e.isDirectory()) out.set(full, 'dir');
  }
  return out;
}
