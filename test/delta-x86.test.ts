import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile, copyFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync } from 'node:zlib';
import { applyDelta, computeDelta, deltaWith, DeltaError, treeStream } from '../src/delta/index.js';
import { decodeContainer, encodeContainer, ENGINES, FIXED_HEADER, type EngineName } from '../src/delta/format.js';
import { wrap, x86Fields, x86Forward, x86Inverse, x86Restore, rangeBound, X86_FIELDS, type FieldSet, type Segment } from '../src/delta/x86.js';
import { MORE_FIELDS } from '../src/delta/x86-predict.js';
import { x86Executables, isX86Executable } from '../src/delta/exe-segments.js';
import { encodeSegments, MAX_SEGMENTS } from '../src/delta/segments.js';
import { tempDir } from './helpers/temp-dir.js';
import type { Owner } from './helpers/cleanup.js';
import { prng } from './helpers/prng.js';
import { varints } from './helpers/varints.js';


const whole = (b: Uint8Array): Segment[] => [{ start: 0, length: b.length }];

/** Forward changes the buffer (when `changes`), inverse restores it exactly. */
function roundTrip(b: Buffer, segments: Segment[], changes: boolean): number {
  const t = Buffer.from(b);
  x86Forward(t, segments);
  let changed = 0;
  for (let i = 0; i < b.length; i++) if (t[i] !== b[i]) changed++;
  if (changes) assert.ok(changed > 0, 'the forward transform converted some fields');
  x86Inverse(t, segments);
  assert.ok(t.equals(b), 'inverse(forward(x)) === x');
  // The fields forward returns restore it too, without a scan.
  const fields = x86Forward(t, segments);
  x86Restore(t, segments, fields);
  assert.ok(t.equals(b), 'restore(forward(x)) === x');
  return changed;
}

/**
 * The scan as its rules read (x86.ts's header), one decision per byte with its guard, as main
 * had it before the table-driven x86Fields: the fields it converts, in order.
 */
function referenceFields(b: Uint8Array, seg: Segment, set: FieldSet, until = seg.length): number[] {
  const fieldAt = (i: number): number => {
    const x = b[i]!;
    if (set.jcc && (x === 0xe8 || x === 0xe9)) return 1;
    if (x === 0x0f) {
      const y = b[i + 1]!;
      if (set.jcc && (y & 0xf0) === 0x80) return 2;
      if (!set.two[y]) return -2;
      return (b[i + 2]! & 0xc7) === 0x05 ? 3 : -3;
    }
    if ((x & 0xf0) === 0x40) {
      const y = b[i + 1]!;
      if (set.one[y]) return (b[i + 2]! & 0xc7) === 0x05 ? 3 : -3;
      if (y !== 0x0f) return -2;
      if (!set.two[b[i + 2]!]) return -3;
      return (b[i + 3]! & 0xc7) === 0x05 ? 4 : -4;
    }
    if (set.one[x]) return (b[i + 1]! & 0xc7) === 0x05 ? 2 : -2;
    return -1;
  };
  const L = rangeBound(seg.length);
  const out: number[] = [];
  let guard = seg.start;
  let i = seg.start;
  while (i <= seg.start + seg.length - 8 && i < seg.start + until) {
    const a = fieldAt(i);
    if (a < 0) {
      guard = Math.max(guard, i - a);
      i++;
      continue;
    }
    const at = i + a;
    const v = b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24);
    if (at >= guard && v >= -L && v < L) {
      out.push(at - seg.start);
      // The pass converts the field here, which no later decision reads.
      i = guard = at + 4;
      continue;
    }
    guard = Math.max(guard, at >= guard ? at + 4 : at);
    i++;
  }
  return out;
}

// The esbuild binary the bench fetches (and tsx installs), and this machine's own binaries.
const ESBUILD = [
  join(process.cwd(), 'node_modules', '@esbuild', 'linux-x64', 'bin', 'esbuild'),
  join(homedir(), '.cache', 'patchwire-bench', 'esbuild-linux-x64-0.24.1', 'package', 'bin', 'esbuild'),
  join(homedir(), '.cache', 'patchwire-bench', 'esbuild-linux-x64-0.24.2', 'package', 'bin', 'esbuild'),
].filter((f) => existsSync(f));
const SYSTEM = ['/usr/bin/bash', '/usr/bin/ls', '/usr/bin/tar', '/usr/bin/gzip', '/usr/bin/sort'].filter((f) => existsSync(f));

test('x86 transform: round trips on real binaries (esbuild, /usr/bin), converting many fields', async () => {
  assert.ok(ESBUILD.length > 0, 'node_modules holds the esbuild binary (tsx depends on it)');
  for (const f of [...ESBUILD, ...SYSTEM]) {
    const b = await readFile(f);
    assert.ok(isX86Executable(b, 0, b.length), `${f} is an x86-64 executable`);
    const changed = roundTrip(b, whole(b), true);
    // Calls, jumps and RIP-relative operands are everywhere in machine code.
    assert.ok(changed > b.length / 200, `${f}: ${changed} bytes of ${b.length} converted`);
    // A segment inside a larger buffer transforms the same bytes the same way, and nothing outside.
    const framed = Buffer.concat([Buffer.alloc(1000, 0xe8), b, Buffer.alloc(777, 0xe8)]);
    const t = Buffer.from(framed);
    x86Forward(t, [{ start: 1000, length: b.length }]);
    const alone = Buffer.from(b);
    x86Forward(alone, whole(b));
    assert.ok(t.subarray(1000, 1000 + b.length).equals(alone), `${f}: position-independent inside a segment`);
    assert.ok(t.subarray(0, 1000).equals(framed.subarray(0, 1000)) && t.subarray(1000 + b.length).equals(framed.subarray(1000 + b.length)), 'bytes outside segments untouched');
  }
});

test('x86 transform: round trips on random and adversarial bytes', () => {
  const rnd = prng(13);
  for (let k = 0; k < 60; k++) {
    const n = 1 + Math.floor(rnd() * 20_000);
    const b = Buffer.alloc(n);
    // Dense opcode bytes and small values make candidate fields overlap everywhere.
    const alphabet = [0xe8, 0xe9, 0x0f, 0x85, 0x48, 0x8b, 0x8d, 0x05, 0x00, 0xff, 0x80, 0x4c, 0x15];
    for (let i = 0; i < n; i++) b[i] = k % 3 === 0 ? Math.floor(rnd() * 256) : alphabet[Math.floor(rnd() * alphabet.length)]!;
    roundTrip(b, whole(b), false);
    // Several segments, some empty, some short.
    const cuts = [0, Math.floor(n / 3), Math.floor(n / 3), Math.floor(n / 2), n].sort((x, y) => x - y);
    const segs: Segment[] = [];
    for (let i = 0; i + 1 < cuts.length; i++) segs.push({ start: cuts[i]!, length: cuts[i + 1]! - cuts[i]! });
    roundTrip(b, segs, false);
  }
  // Values at the edges of the range [-L, L): converted values wrap inside it and come back.
  const L = rangeBound(1 << 16);
  const edge = Buffer.alloc(1 << 16);
  for (let i = 0; i + 5 <= edge.length; i += 5) {
    edge[i] = 0xe8;
    const v = [L - 1, -L, 0, -1, L, -L - 1][(i / 5) % 6]!;
    edge.writeInt32LE(v, i + 1);
  }
  assert.ok(roundTrip(edge, whole(edge), true) > 0);
  // Out-of-range values (L, -L - 1) are never converted.
  const t = Buffer.from(edge);
  x86Forward(t, whole(t));
  for (let i = 0; i + 5 <= t.length - 8; i += 5) {
    const v = edge.readInt32LE(i + 1);
    if (v >= L || v < -L) assert.equal(t.readInt32LE(i + 1), v, `value ${v} at ${i} left as is`);
    else assert.equal(t.readInt32LE(i + 1), ((((v + i + 1 + L) % (2 * L)) + 2 * L) % (2 * L)) - L);
  }
});

test('x86 transform: the table-driven scan finds the fields of the plain one, for both field sets', async () => {
  const rnd = prng(29);
  const inputs: Buffer[] = [];
  for (const f of [...ESBUILD.slice(0, 1), ...SYSTEM.slice(0, 2)]) inputs.push(await readFile(f));
  const alphabet = [0xe8, 0xe9, 0x0f, 0x85, 0x48, 0x4c, 0x8b, 0x8d, 0x83, 0x80, 0x38, 0xb1, 0xc1, 0x3d, 0x05, 0x00, 0xff, 0x84];
  for (let k = 0; k < 40; k++) {
    const b = Buffer.alloc(1 + Math.floor(rnd() * 20_000));
    for (let i = 0; i < b.length; i++) b[i] = k % 4 === 0 ? Math.floor(rnd() * 256) : alphabet[Math.floor(rnd() * alphabet.length)]!;
    inputs.push(b);
  }
  let found = 0;
  for (const b of inputs) {
    for (const set of [X86_FIELDS, MORE_FIELDS]) {
      for (const seg of [{ start: 0, length: b.length }, { start: Math.floor(b.length / 3), length: Math.floor(b.length / 2) }]) {
        const want = referenceFields(b, seg, set);
        assert.deepEqual([...x86Fields(b, seg, set)], want);
        found += want.length;
        // Only the decisions before `until`: the same fields before it.
        const until = Math.floor(rnd() * seg.length);
        const some = [...x86Fields(b, seg, set, until)];
        assert.deepEqual(some, referenceFields(b, seg, set, until));
        assert.deepEqual(some.filter((f) => f < until), want.filter((f) => f < until));
      }
    }
  }
  assert.ok(found > 100_000, `${found} fields compared`);
});

test('x86 transform: wrap agrees with the modulo for near and far values', () => {
  const rnd = prng(31);
  for (const L of [1 << 16, 1 << 24, 1 << 30]) {
    for (let k = 0; k < 2000; k++) {
      const w = k < 1000 ? Math.floor((rnd() * 6 - 3) * L) : Math.floor((rnd() - 0.5) * 2 ** 40);
      assert.equal(wrap(w, L), ((((w + L) % (2 * L)) + 2 * L) % (2 * L)) - L, `wrap(${w}, ${L})`);
    }
    for (const w of [-L, L - 1, L, -L - 1, 3 * L, -3 * L, 3 * L - 1]) assert.equal(wrap(w, L), ((((w + L) % (2 * L)) + 2 * L) % (2 * L)) - L);
  }
});

test('x86 transform: segments out of range, overlapping or unsorted are refused', () => {
  const b = Buffer.alloc(100);
  for (const segs of [[{ start: 90, length: 11 }], [{ start: -1, length: 5 }], [{ start: 10, length: 20 }, { start: 20, length: 5 }], [{ start: 50, length: 5 }, { start: 10, length: 5 }], [{ start: 0, length: Number.MAX_SAFE_INTEGER }], [{ start: 1.5, length: 2 }]]) {
    assert.throws(() => x86Forward(b, segs), RangeError);
    assert.throws(() => x86Inverse(b, segs), RangeError);
    assert.throws(() => x86Restore(b, segs, segs.map(() => new Int32Array(0))), RangeError);
  }
  assert.throws(() => x86Restore(b, [{ start: 0, length: 10 }], []), RangeError);
});

test('tree streams: the x86-64 executables are found, other files are not', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'bin'));
  await copyFile('/usr/bin/ls', join(dir, 'bin', 'ls'));
  await writeFile(join(dir, 'README.md'), 'an \x7fELF that is not one\n'.repeat(100));
  await writeFile(join(dir, 'fake'), Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(100)])); // e_machine 0
  const stream = await treeStream(dir);
  const segs = x86Executables(stream);
  assert.equal(segs.length, 1);
  assert.ok(stream.subarray(segs[0]!.start, segs[0]!.start + segs[0]!.length).equals(await readFile('/usr/bin/ls')));
  // Garbage is not a tar: no segments, no crash.
  const rnd = prng(3);
  const junk = Buffer.alloc(8192);
  for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(rnd() * 256);
  assert.deepEqual(x86Executables(junk), []);
  assert.deepEqual(x86Executables(Buffer.alloc(0)), []);
});

/** Two tree streams of real binaries: /usr/bin/ls and /usr/bin/dir (coreutils builds of the same code), and a shifted copy. */
async function binaryPair(t: Owner): Promise<{ old: Buffer; neu: Buffer }> {
  const a = await tempDir(t);
  const b = await tempDir(t);
  const ls = await readFile('/usr/bin/ls');
  const tarBin = await readFile('/usr/bin/tar');
  await mkdir(join(a, 'bin'));
  await mkdir(join(b, 'bin'));
  await writeFile(join(a, 'bin', 'tool'), ls);
  await writeFile(join(a, 'bin', 'tar'), tarBin);
  await writeFile(join(a, 'README.md'), 'version 1\n');
  await writeFile(join(b, 'bin', 'tool'), await readFile(existsSync('/usr/bin/dir') ? '/usr/bin/dir' : '/usr/bin/ls'));
  // The second binary with 300 bytes inserted in its middle: everything after shifts.
  await writeFile(join(b, 'bin', 'tar'), Buffer.concat([tarBin.subarray(0, 200_000), Buffer.alloc(300, 0x90), tarBin.subarray(200_000)]));
  await writeFile(join(b, 'README.md'), 'version 2, longer\n');
  return { old: await treeStream(a), neu: await treeStream(b) };
}

test('x86 engines through the full compute/apply path reproduce NEW; OLD and NEW are left as they were', async (t) => {
  const { old, neu } = await binaryPair(t);
  const oldCopy = Buffer.from(old);
  const neuCopy = Buffer.from(neu);
  assert.equal(x86Executables(old).length, 2);
  for (const engine of ['x86-bsdiff-brotli', 'x86-lz-brotli'] as EngineName[]) {
    const delta = await deltaWith(engine, old, neu);
    assert.equal(decodeContainer(delta).engine, ENGINES[engine]);
    assert.ok(old.equals(oldCopy) && neu.equals(neuCopy), `${engine}: the inputs are restored after computing`);
    const out = applyDelta(old, delta, { maxOutput: neu.length });
    assert.ok(out.equals(neu), `${engine} reproduces NEW`);
    assert.ok(old.equals(oldCopy), `${engine}: OLD is restored after applying`);
    assert.ok(delta.length < neu.length / 20, `${engine}: ${delta.length} bytes for ${neu.length}`);
  }
  for (const lowCost of [false, true]) {
    const r = await computeDelta(old, neu, { lowCost });
    assert.ok(old.equals(oldCopy) && neu.equals(neuCopy));
    assert.ok(applyDelta(old, r.delta, { maxOutput: neu.length }).equals(neu), `computeDelta (lowCost ${lowCost}, ${r.engine}) reproduces NEW`);
    if (lowCost) assert.equal(r.engine, 'x86-lz-brotli');
  }
});

const BENCH = join(homedir(), '.cache', 'patchwire-bench');
test('the bench\'s real esbuild pair (0.24.1 -> 0.24.2) through computeDelta reproduces NEW', { skip: !existsSync(join(BENCH, 'esbuild-linux-x64-0.24.2', 'package')) && 'run bench/delta.ts --only esbuild once to fetch the pair' }, async () => {
  const old = await treeStream(join(BENCH, 'esbuild-linux-x64-0.24.1', 'package'));
  const neu = await treeStream(join(BENCH, 'esbuild-linux-x64-0.24.2', 'package'));
  const r = await computeDelta(old, neu, { lowCost: true });
  assert.equal(r.engine, 'x86-lz-brotli');
  assert.ok(applyDelta(old, r.delta, { maxOutput: neu.length }).equals(neu));
});

function expectDeltaError(fn: () => unknown, re?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DeltaError, `expected DeltaError, got ${String(err)}`);
    if (re) assert.match((err as Error).message, re);
    return true;
  });
}


test('x86 engines: hostile segments streams fail cleanly and leave OLD as it was', async (t) => {
  const { old, neu } = await binaryPair(t);
  const oldCopy = Buffer.from(old);
  const good = await deltaWith('x86-bsdiff-brotli', old, neu);
  const h = decodeContainer(good);
  // Rebuilds the delta with another segments stream (raw bytes, declared length).
  const withSegments = (raw: Buffer, declared = raw.length): Buffer => encodeContainer(ENGINES['x86-bsdiff-brotli'], old, neu, [
    ...h.streams.slice(0, 2).map((s) => ({ rawLength: s.rawLength, data: Buffer.from(s.data) })),
    { rawLength: declared, data: brotliCompressSync(raw) },
  ]);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['a segment past the end of OLD', varints(1, old.length - 10, 11, 0), /past the end of the old/],
    ['a length overflowing', varints(1, 0, 2 ** 52, 0), /past the end of the old/],
    ['a gap overflowing', varints(0, 1, 2 ** 53, 5), /past the end of the new/],
    ['too many segments', varints(MAX_SEGMENTS + 1), /more than/],
    ['a number of 9 bytes', Buffer.alloc(9, 0xff), /longer than 8 bytes/],
    ['truncated', varints(1, 5), /ends inside a number/],
    ['trailing bytes', Buffer.concat([encodeSegments([], []), Buffer.from([7])]), /unexpected bytes/],
  ];
  for (const [what, raw, re] of cases) {
    expectDeltaError(() => applyDelta(old, withSegments(raw), { maxOutput: neu.length }), re);
    assert.ok(old.equals(oldCopy), `${what}: OLD untouched`);
  }
  // Segments that are valid but wrong (not where the executables are): the result fails its hash, OLD is restored.
  expectDeltaError(() => applyDelta(old, withSegments(encodeSegments([{ start: 0, length: old.length }], [{ start: 0, length: neu.length }])), { maxOutput: neu.length }), /sha256/);
  assert.ok(old.equals(oldCopy), 'wrong segments: OLD restored');
  // A declared size larger than the limit is refused before decompressing; a bomb stops at its declared size.
  expectDeltaError(() => applyDelta(old, withSegments(Buffer.alloc(10), 10_000_000), { maxOutput: neu.length }), /segments stream is too long/);
  expectDeltaError(() => applyDelta(old, withSegments(Buffer.alloc(60_000), 10), { maxOutput: neu.length }), /segments stream/);
  // Missing stream.
  const short = encodeContainer(ENGINES['x86-bsdiff-brotli'], old, neu, h.streams.slice(0, 2).map((s) => ({ rawLength: s.rawLength, data: Buffer.from(s.data) })));
  expectDeltaError(() => applyDelta(old, short, { maxOutput: neu.length }), /has 3 streams/);

  // Truncations, random flips in every byte region and random bytes as a delta: DeltaError or NEW, never a crash.
  const rnd = prng(7);
  for (const engine of ['x86-bsdiff-brotli', 'x86-lz-brotli'] as EngineName[]) {
    const delta = engine === 'x86-bsdiff-brotli' ? good : await deltaWith(engine, old, neu);
    for (const cut of [1, FIXED_HEADER, FIXED_HEADER + 20, Math.floor(delta.length / 2), delta.length - 1]) {
      expectDeltaError(() => applyDelta(old, delta.subarray(0, cut), { maxOutput: neu.length }));
    }
    for (let k = 0; k < 60; k++) {
      const bad = Buffer.from(delta);
      const at = Math.floor(rnd() * bad.length);
      bad[at] ^= 1 + Math.floor(rnd() * 255);
      try {
        const out = applyDelta(old, bad, { maxOutput: neu.length });
        assert.ok(out.equals(neu), `${engine} flip at ${at}: wrong output accepted`);
      } catch (err) {
        assert.ok(err instanceof DeltaError, `${engine} flip at ${at}: ${String(err)}`);
      }
      assert.ok(old.equals(oldCopy), `${engine} flip at ${at}: OLD restored`);
    }
  }
  // Random streams in a well-framed container for OLD (so they reach the engines' checks).
  const randomBytes = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
    return b;
  };
  for (let k = 0; k < 40; k++) {
    const engine = k % 2 ? 'x86-bsdiff-brotli' : 'x86-lz-brotli';
    const count = engine === 'x86-bsdiff-brotli' ? 3 : 6;
    const streams = Array.from({ length: count }, (_, i) => {
      const raw = randomBytes(Math.floor(rnd() * 64));
      // Half of them well-compressed random contents, half random bytes as compressed data.
      return k % 4 < 2 ? { rawLength: raw.length, data: brotliCompressSync(raw) } : { rawLength: i === 1 && count === 3 ? neu.length : raw.length, data: raw };
    });
    expectDeltaError(() => applyDelta(old, encodeContainer(ENGINES[engine], old, neu, streams), { maxOutput: neu.length }));
    assert.ok(old.equals(oldCopy), `random ${engine} delta ${k}: OLD restored`);
  }
});
