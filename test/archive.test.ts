import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmod, lstat, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { packTree } from '../src/util/archive-pack.js';
import { extractArchive, inspectArchive, UnsafeArchiveError } from '../src/util/archive-extract.js';
import { hashTree } from '../src/util/tree-hash.js';
import { tempDir } from './helpers/temp-dir.js';

const TAR = '/usr/bin/tar';
const BIG = 64 * 1024 * 1024;

function tar(args: string[]): string {
  const r = spawnSync(TAR, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `tar ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const LONG = `deep/${'a'.repeat(60)}/${'b'.repeat(60)}.txt`; // > 100 bytes, each part < 100
const UNICODE = 'héllo-世界.txt';

/** The tree the task names: nested folders, exec file, links, long path, unicode, empty, 3 MB. */
async function makeTree(root: string): Promise<void> {
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'deep', 'a'.repeat(60)), { recursive: true });
  await mkdir(join(root, 'nested', 'x', 'y'), { recursive: true });
  await mkdir(join(root, 'empty-dir'));
  await writeFile(join(root, 'bin', 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(root, 'bin', 'run.sh'), 0o755);
  await symlink('run.sh', join(root, 'bin', 'latest'));
  await symlink(`../${LONG}`, join(root, 'nested', 'long-link')); // link name > 100 bytes
  await writeFile(join(root, LONG), 'long path');
  await writeFile(join(root, UNICODE), 'unicode');
  await writeFile(join(root, 'nested', 'x', 'y', 'empty'), '');
  const big = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 32) createHash('sha256').update(String(i)).digest().copy(big, i);
  await writeFile(join(root, 'nested', 'big.bin'), big);
}

test('pack then extract gives the same tree; packing is deterministic', async (t) => {
  const root = await tempDir(t, 'pw-archive-');
  const src = join(root, 'src');
  await mkdir(src);
  await makeTree(src);
  const r1 = await packTree(src, join(root, 'a.tgz'));
  const r2 = await packTree(src, join(root, 'b.tgz'));
  const a = await readFile(join(root, 'a.tgz'));
  assert.deepEqual(a, await readFile(join(root, 'b.tgz')));
  assert.deepEqual(r1, r2);
  assert.equal(r1.length, a.length);
  assert.equal(r1.sha256, createHash('sha256').update(a).digest('hex'));

  const dest = join(root, 'dest');
  await mkdir(dest);
  const srcHash = await hashTree(src);
  const res = await extractArchive(join(root, 'a.tgz'), dest, { maxBytes: srcHash.bytes });
  assert.deepEqual(res, { files: srcHash.files, bytes: srcHash.bytes });
  assert.equal((await hashTree(dest)).hash, srcHash.hash);
  assert.deepEqual(await inspectArchive(join(root, 'a.tgz'), { maxBytes: srcHash.bytes }), res);
  assert.equal((await lstat(join(dest, 'bin', 'run.sh'))).mode & 0o777, 0o755);
  assert.equal((await lstat(join(dest, UNICODE))).mode & 0o777, 0o644);

  // Re-packing the extracted tree gives the very same bytes.
  await packTree(dest, join(root, 'c.tgz'));
  assert.deepEqual(await readFile(join(root, 'c.tgz')), a);
});

test('system tar reads our archives, and we read system tar archives', async (t) => {
  const root = await tempDir(t, 'pw-archive-');
  const src = join(root, 'src');
  await mkdir(src);
  await makeTree(src);
  const srcHash = await hashTree(src);
  await packTree(src, join(root, 'ours.tgz'));

  const listed = tar(['-tzf', join(root, 'ours.tgz')]).split('\n').filter(Boolean).sort();
  assert.ok(listed.includes(LONG), 'long path listed in full');
  assert.ok(listed.includes(UNICODE), 'unicode name listed');
  assert.ok(listed.includes('nested/long-link'));
  assert.ok(listed.includes('empty-dir/'));
  const byTar = join(root, 'by-tar');
  await mkdir(byTar);
  tar(['-xzf', join(root, 'ours.tgz'), '-C', byTar]);
  assert.equal((await hashTree(byTar)).hash, srcHash.hash);

  // GNU tar's default format (GNU 'L'/'K' long names), pax, and ustar (prefix field).
  for (const format of ['gnu', 'pax', 'ustar']) {
    // ustar cannot hold a link target over 100 bytes at all: leave that link out for it.
    if (format === 'ustar') await rm(join(src, 'nested', 'long-link'));
    const file = join(root, `sys-${format}.tgz`);
    tar([`--format=${format}`, '-czf', file, '-C', src, '.']);
    const dest = join(root, `dest-${format}`);
    await mkdir(dest);
    await extractArchive(file, dest, { maxBytes: srcHash.bytes });
    assert.equal((await hashTree(dest)).hash, (await hashTree(src)).hash, `format ${format}`);
  }
});

test('extract refuses a destination that is not empty', async (t) => {
  const root = await tempDir(t, 'pw-archive-');
  await mkdir(join(root, 'src'));
  await writeFile(join(root, 'src', 'f'), 'x');
  await packTree(join(root, 'src'), join(root, 'a.tgz'));
  await mkdir(join(root, 'dest'));
  await writeFile(join(root, 'dest', 'already'), '');
  await assert.rejects(extractArchive(join(root, 'a.tgz'), join(root, 'dest'), { maxBytes: BIG }), /not empty/);
  await assert.rejects(extractArchive(join(root, 'a.tgz'), join(root, 'missing'), { maxBytes: BIG }), { code: 'ENOENT' });
});

test('packTree leaves no archive behind when it fails', async (t) => {
  const root = await tempDir(t, 'pw-archive-');
  await mkdir(join(root, 'src'));
  await writeFile(join(root, 'src', 'f'), 'x');
  await assert.rejects(packTree(join(root, 'src'), join(root, 'a.tgz'), AbortSignal.abort()), { name: 'AbortError' });
  assert.deepEqual(await readdir(root), ['src']);
  await assert.rejects(packTree(join(root, 'src'), join(root, 'src', 'a.tgz')), /inside the folder/);
});

test('packTree refuses a link that leaves the tree', async (t) => {
  const root = await tempDir(t, 'pw-archive-');
  await mkdir(join(root, 'src'));
  await symlink('/etc', join(root, 'src', 'etc'));
  await assert.rejects(packTree(join(root, 'src'), join(root, 'a.tgz')), /absolute path/);
});

// ---- malicious archives, built with a tiny raw tar writer independent of src/ ----

interface RawEntry {
  name: string;
  type?: string;
  data?: string | Buffer;
  /** Size written in the header, if not the data's length (to fake huge files). */
  size?: number;
  linkname?: string;
  mode?: number;
  badChecksum?: boolean;
}

function rawHeader(e: RawEntry, size: number): Buffer {
  const b = Buffer.alloc(512);
  const oct = (v: number, len: number) => v.toString(8).padStart(len - 1, '0') + '\0';
  b.write(e.name, 0, 100, 'utf8');
  b.write(oct(e.mode ?? 0o644, 8), 100, 'latin1');
  b.write(oct(0, 8), 108, 'latin1');
  b.write(oct(0, 8), 116, 'latin1');
  b.write(oct(size, 12), 124, 'latin1');
  b.write(oct(0, 12), 136, 'latin1');
  b.write(e.type ?? '0', 156, 'latin1');
  b.write(e.linkname ?? '', 157, 100, 'utf8');
  b.write('ustar\x0000', 257, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const v of b) sum += v;
  b.write(oct(sum + (e.badChecksum ? 1 : 0), 7) + ' ', 148, 'latin1');
  return b;
}

function rawTar(entries: RawEntry[], end = true): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    parts.push(rawHeader(e, e.size ?? data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  if (end) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

async function listAll(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix + d.name;
    out.push(rel);
    if (d.isDirectory()) out.push(...(await listAll(join(dir, d.name), `${rel}/`)));
  }
  return out.sort();
}

interface Case {
  name: string;
  /** Given the temp root, the gzip bytes of the archive. */
  archive: (root: string) => Buffer;
  error: RegExp;
  unsafe?: boolean;
  maxBytes?: number;
}

const file = (name: string, data = 'evil'): RawEntry => ({ name, data });
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  return `${body.length + 2}${body}`; // short records: the length has two digits
}
const gz = (entries: RawEntry[]) => () => gzipSync(rawTar(entries));

const cases: Case[] = [
  { name: '../evil', archive: gz([file('../evil')]), error: /"\.\.\/evil".*\.\./, unsafe: true },
  { name: 'a/../../evil', archive: gz([file('ok'), file('a/../../evil')]), error: /\.\./, unsafe: true },
  { name: '/etc/evil', archive: gz([file('/etc/evil')]), error: /absolute path/, unsafe: true },
  // An absolute path aimed at our own temp root, so the "nothing outside" check has teeth.
  { name: 'absolute into temp root', archive: (root) => gzipSync(rawTar([file(join(root, 'evil'))])), error: /absolute path/, unsafe: true },
  { name: 'windows drive', archive: gz([file('C:/evil')]), error: /drive/, unsafe: true },
  { name: 'backslashes', archive: gz([file('a\\..\\..\\evil')]), error: /backslash/, unsafe: true },
  { name: 'empty name', archive: gz([file('')]), error: /empty name/, unsafe: true },
  { name: 'link -> /etc, then link/passwd', archive: gz([{ name: 'link', type: '2', linkname: '/etc' }, file('link/passwd')]), error: /"link".*absolute path/, unsafe: true },
  { name: 'link -> temp root, then link/evil', archive: (root) => gzipSync(rawTar([{ name: 'link', type: '2', linkname: root }, file('link/evil')])), error: /absolute path/, unsafe: true },
  { name: 'file through an inner link', archive: gz([{ name: 'sub/', type: '5' }, { name: 'link', type: '2', linkname: 'sub' }, file('link/evil')]), error: /"link\/evil".*parent "link" is a symbolic link/, unsafe: true },
  { name: 'up -> ../..', archive: gz([{ name: 'up', type: '2', linkname: '../..' }, file('up/evil')]), error: /"up".*outside/, unsafe: true },
  { name: 'd/up2 -> up/.. (climbs through another link)', archive: gz([{ name: 'd/up', type: '2', linkname: '..' }, { name: 'd/up2', type: '2', linkname: 'up/..' }]), error: /"d\/up2".*after a name/, unsafe: true },
  // The ustar name looks harmless; the pax or GNU long name that overrides it does not.
  { name: 'pax path ../evil', archive: gz([{ name: 'PaxHeaders/x', type: 'x', data: paxRecord('path', '../evil') }, file('harmless')]), error: /"\.\.\/evil"/, unsafe: true },
  { name: 'pax linkpath /etc', archive: gz([{ name: 'PaxHeaders/l', type: 'x', data: paxRecord('linkpath', '/etc') }, { name: 'l', type: '2', linkname: 'ok' }]), error: /absolute path/, unsafe: true },
  { name: 'GNU long name ../evil', archive: gz([{ name: '././@LongLink', type: 'L', data: '../evil\0' }, file('harmless')]), error: /"\.\.\/evil"/, unsafe: true },
  { name: 'hard link', archive: gz([file('a'), { name: 'h', type: '1', linkname: 'a' }]), error: /"h".*hard links/, unsafe: true },
  { name: 'fifo', archive: gz([{ name: 'p', type: '6' }]), error: /fifos/, unsafe: true },
  { name: 'char device', archive: gz([{ name: 'null', type: '3' }]), error: /character devices/, unsafe: true },
  { name: 'unknown type', archive: gz([{ name: 'v', type: 'V' }]), error: /unknown entry type/, unsafe: true },
  { name: 'duplicate entry', archive: gz([file('a', 'one'), file('a', 'two')]), error: /"a".*duplicate/, unsafe: true },
  { name: 'file over a symlink', archive: gz([{ name: 'l', type: '2', linkname: 'x' }, file('l')]), error: /"l".*duplicate.*symbolic link/, unsafe: true },
  { name: 'file over a folder', archive: gz([file('d/f'), file('d')]), error: /"d".*folder/, unsafe: true },
  { name: 'oversize', archive: gz([file('a', 'x'.repeat(600)), file('b', 'y'.repeat(600))]), maxBytes: 1000, error: /"b".*endless data/ },
  // Claims 1 TiB but holds a few bytes: refused on the header, before reading any of it.
  { name: 'endless (huge size in header)', archive: gz([{ name: 'a', data: 'x', size: 2 ** 40 }]), error: /endless data/ },
  { name: 'truncated tar', archive: () => gzipSync(rawTar([file('a', 'x'.repeat(2000))]).subarray(0, 1024)), error: /^archive is truncated$/ },
  { name: 'no end marker', archive: () => gzipSync(rawTar([file('a')], false)), error: /^archive is truncated$/ },
  { name: 'truncated gzip', archive: () => { const g = gzipSync(rawTar([file('a', 'x'.repeat(5000))])); return g.subarray(0, g.length - 20); }, error: /^archive is truncated$/ },
  { name: 'corrupt checksum', archive: gz([{ name: 'a', data: 'x', badChecksum: true }]), error: /archive is corrupt/ },
  { name: 'not gzip', archive: () => Buffer.from('hello, this is not a gzip stream at all'), error: /archive is corrupt/ },
];

for (const c of cases) {
  test(`refuses: ${c.name}`, async (t) => {
    const root = await tempDir(t, 'pw-archive-');
    const archive = join(root, 'bad.tgz');
    await writeFile(archive, c.archive(root));
    const opts = { maxBytes: c.maxBytes ?? BIG };
    const check = (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, c.error);
      if (c.unsafe) assert.ok(err instanceof UnsafeArchiveError, `${err.name}: ${err.message}`);
      return true;
    };

    await assert.rejects(inspectArchive(archive, opts), check);
    assert.deepEqual(await listAll(root), ['bad.tgz'], 'inspect wrote nothing');

    // Nested, so that a `..` or `../..` escape would land inside our temp root, where we look.
    const dest = join(root, 'box', 'dest');
    await mkdir(dest, { recursive: true });
    await assert.rejects(extractArchive(archive, dest, opts), check);
    const outside = (await listAll(root)).filter((p) => !p.startsWith('box/dest/'));
    assert.deepEqual(outside, ['bad.tgz', 'box', 'box/dest']);
  });
}

test('accepts links that stay inside, and ./ roots', async (t) => {
  const root = await tempDir(t, 'pw-archive-');
  const archive = join(root, 'ok.tgz');
  await writeFile(archive, gzipSync(rawTar([
    { name: './', type: '5' },
    { name: './d/up', type: '2', linkname: '..' },
    { name: './d/sib', type: '2', linkname: '../f' },
    { name: './d/', type: '5' }, // its own entry after being created as a parent
    { name: './f', data: 'content', mode: 0o700 },
  ])));
  const dest = join(root, 'dest');
  await mkdir(dest);
  assert.deepEqual(await extractArchive(archive, dest, { maxBytes: 7 }), { files: 1, bytes: 7 });
  assert.equal(await readFile(join(dest, 'd', 'sib'), 'utf8'), 'content');
  assert.equal((await lstat(join(dest, 'f'))).mode & 0o777, 0o755);
});

test('extract honours an aborted signal', async (t) => {
  const root = await tempDir(t, 'pw-archive-');
  await writeFile(join(root, 'a.tgz'), gzipSync(rawTar([file('a')])));
  await mkdir(join(root, 'dest'));
  await assert.rejects(extractArchive(join(root, 'a.tgz'), join(root, 'dest'), { maxBytes: BIG, signal: AbortSignal.abort() }), { name: 'AbortError' });
});

test('extraction (the agent) refuses what goes beyond the archive limits, with ArchiveLimitError naming the limit; nothing is written', async (t) => {
  const { ArchiveLimitError } = await import('../src/util/archive-extract.js');
  const { encodeHeader, encodePax, padding, BLOCK } = await import('../src/util/tar-format.js');
  const dir = await tempDir(t, 'patchwire-limits-');
  const withPax = (path: string, extra: Array<[string, string]> = []) => {
    const pax = encodePax([...extra, ['path', path]]);
    return gzipSync(Buffer.concat([
      encodeHeader({ name: 'PaxHeader', mode: 0o644, size: pax.length, typeflag: 'x' }), pax, Buffer.alloc(padding(pax.length)),
      encodeHeader({ name: 'x', mode: 0o644, size: 0, typeflag: '0' }), Buffer.alloc(BLOCK * 2),
    ]));
  };
  const cases: Array<[string, Buffer, string]> = [
    ['deep', withPax(`${'a/'.repeat(30_000)}f`), 'pathBytes'],
    ['component', withPax(`d/${'n'.repeat(256)}`), 'componentBytes'],
    ['pax', withPax('f', [['comment', 'c'.repeat(70_000)]]), 'metaBytes'],
  ];
  for (const [name, bytes, limit] of cases) {
    const file = join(dir, `${name}.tar.gz`);
    await writeFile(file, bytes);
    const dest = join(dir, name);
    await mkdir(dest);
    await assert.rejects(extractArchive(file, dest, { maxBytes: 10 }), (e: Error) => e instanceof ArchiveLimitError && e.limit === limit, name);
    assert.deepEqual(await readdir(dest), [], `${name}: nothing written`);
  }
});
