import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync } from 'node:zlib';
import { applyDelta, computeDelta, deltaWith, DeltaError, treeStream } from '../src/delta/index.js';
import { decodeContainer, encodeContainer, ENGINES } from '../src/delta/format.js';
import { exeLayout, x86Executables } from '../src/delta/exe-segments.js';
import { decodeSegments } from '../src/delta/segments.js';
import { rangeBound, type Segment } from '../src/delta/x86.js';
import { checkPieces, decodePredictions, encodePredictions, MAX_PIECES, predictForward, predictInverse, TargetMap, type Piece, type Prediction } from '../src/delta/x86-predict.js';
import { tempDir } from './helpers/temp-dir.js';
import { prng } from './helpers/prng.js';
import { varints } from './helpers/varints.js';
import { expectFlipsRefused } from './helpers/delta-flips.js';

const ESBUILD = join(process.cwd(), 'node_modules', '@esbuild', 'linux-x64', 'bin', 'esbuild');
const SYSTEM = ['/usr/bin/ls', '/usr/bin/tar', '/usr/bin/bash'].filter((f) => existsSync(f));

/** Random pieces, disjoint on both sides, inside [0, size): shuffled blocks of a cut-up range. */
function randomPieces(rnd: () => number, size: number, count: number): Piece[] {
  const cuts = Array.from({ length: 2 * count }, () => Math.floor(rnd() * size)).sort((a, b) => a - b);
  const blocks: Array<[number, number]> = [];
  for (let i = 0; i + 1 < cuts.length; i += 2) if (cuts[i + 1]! > cuts[i]!) blocks.push([cuts[i]!, cuts[i + 1]! - cuts[i]!]);
  // NEW side: the same lengths at shuffled, shifted places (still disjoint: laid out in the new order with gaps).
  const order = blocks.map((_, i) => i).sort(() => rnd() - 0.5);
  const pieces: Piece[] = [];
  let n = Math.floor(rnd() * 1000);
  for (const i of order) {
    const [o, len] = blocks[i]!;
    if (n + len > size) break;
    pieces.push({ o, n, len });
    n += len + Math.floor(rnd() * 3000);
  }
  return pieces.sort((a, b) => a.n - b.n);
}

test('x86 prediction: the target map is a bijection of [-L, L) that moves each piece by its shift', () => {
  const rnd = prng(21);
  for (const L of [1 << 16, 1 << 20, 1 << 24]) {
    for (const count of [0, 1, 7, 200]) {
      const pieces = randomPieces(rnd, L, count);
      checkPieces(pieces, L);
      const m = new TargetMap(pieces, L);
      const probes = [-L, -L + 1, -1, 0, L - 1, ...pieces.flatMap((p) => [p.o - 1, p.o, p.o + p.len - 1, p.o + p.len, p.n - 1, p.n, p.n + p.len])].filter((w) => w >= -L && w < L);
      for (let i = 0; i < 3000; i++) probes.push(Math.floor(rnd() * 2 * L) - L);
      for (const w of probes) {
        const x = m.toNew(w);
        assert.ok(x >= -L && x < L, `toNew(${w}) = ${x} stays in range`);
        assert.equal(m.toOld(x), w, `toOld(toNew(${w}))`);
        assert.equal(m.toNew(m.toOld(w)), w, `toNew(toOld(${w}))`);
      }
      for (const p of pieces) assert.equal(m.toNew(p.o + (p.len >> 1)), p.n + (p.len >> 1));
    }
  }
  // The whole small range maps onto itself, one to one.
  const L = 1 << 16;
  const m = new TargetMap(randomPieces(rnd, L, 30), L);
  const seen = new Uint8Array(2 * L);
  for (let w = -L; w < L; w++) seen[m.toNew(w) + L]++;
  assert.ok(seen.every((c) => c === 1));
});

test('x86 prediction: the target map is the one of its definition, also with many short, adjacent pieces in a bucket', () => {
  const rnd = prng(37);
  const L = 1 << 16;
  // Dense: blocks of 1-8 bytes cut from [-L, L) without gaps, laid out shuffled, some with gaps of 0.
  const dense = (): Piece[] => {
    const blocks: Array<[number, number]> = [];
    for (let o = -L + Math.floor(rnd() * 50); o < -L + 20_000; ) {
      const len = 1 + Math.floor(rnd() * 8);
      if (rnd() < 0.7) blocks.push([o, len]);
      o += len;
    }
    const pieces: Piece[] = [];
    let n = -L + 30_000 + Math.floor(rnd() * 10);
    for (const i of blocks.map((_, k) => k).sort(() => rnd() - 0.5)) {
      pieces.push({ o: blocks[i]![0], n, len: blocks[i]![1] });
      n += blocks[i]![1] + (rnd() < 0.5 ? 0 : Math.floor(rnd() * 5));
    }
    return pieces.sort((a, b) => a.n - b.n);
  };
  for (const pieces of [dense(), dense(), randomPieces(rnd, L, 300), []]) {
    checkPieces(pieces, L);
    // The definition: a value inside an OLD piece moves by its shift; the rest map in order onto the rest.
    const inOld = new Int32Array(2 * L).fill(-1);
    const inNew = new Uint8Array(2 * L);
    pieces.forEach((p, k) => {
      for (let j = 0; j < p.len; j++) {
        inOld[p.o + j + L] = k;
        inNew[p.n + j + L] = 1;
      }
    });
    const restNew: number[] = [];
    for (let w = -L; w < L; w++) if (!inNew[w + L]) restNew.push(w);
    const m = new TargetMap(pieces, L);
    let rank = 0;
    for (let w = -L; w < L; w++) {
      const k = inOld[w + L]!;
      const want = k >= 0 ? w - pieces[k]!.o + pieces[k]!.n : restNew[rank++]!;
      if (m.toNew(w) !== want) assert.equal(m.toNew(w), want, `toNew(${w}) with ${pieces.length} pieces`);
      if (m.toOld(want) !== w) assert.equal(m.toOld(want), w, `toOld(${want})`);
    }
  }
  assert.throws(() => new TargetMap([], L).toNew(L), RangeError);
  assert.throws(() => new TargetMap([], L).toNew(-L - 1), RangeError);
});

test('x86 prediction: pieces that overlap, are empty or leave the range are refused', () => {
  const L = 1 << 16;
  const bad: Array<[string, Piece[]]> = [
    ['overlap in NEW', [{ o: 0, n: 10, len: 10 }, { o: 100, n: 15, len: 10 }]],
    ['overlap in OLD', [{ o: 0, n: 10, len: 10 }, { o: 5, n: 100, len: 10 }]],
    ['empty', [{ o: 0, n: 0, len: 0 }]],
    ['past L', [{ o: L - 5, n: 0, len: 10 }]],
    ['below -L', [{ o: -L - 1, n: 0, len: 10 }]],
  ];
  for (const [what, pieces] of bad) assert.throws(() => checkPieces(pieces, L), DeltaError, what);
});

test('x86 prediction: forward then inverse restores real binaries and random bytes exactly, whatever the pieces', async () => {
  const rnd = prng(5);
  const files = [...(existsSync(ESBUILD) ? [ESBUILD] : []), ...SYSTEM];
  assert.ok(files.length > 0);
  const random = Buffer.alloc(300_000);
  for (let i = 0; i < random.length; i++) random[i] = Math.floor(rnd() * 256);
  for (const b of [...(await Promise.all(files.map((f) => readFile(f)))), random]) {
    const seg: Segment = { start: 100, length: b.length };
    const framed = Buffer.concat([Buffer.alloc(100, 0xe8), b, Buffer.alloc(50, 0xe8)]);
    const L = rangeBound(b.length);
    const layout = exeLayout(framed, seg);
    // With the layout the server finds, and with a pointer range over everything (base 0x400000).
    for (const p of [{ ...layout }, { codeStart: 0, codeEnd: b.length, ptrStart: 3, ptrEnd: b.length, ptrBase: 0x400000 }]) {
      const pred: Prediction = { ...p, pieces: randomPieces(rnd, Math.min(L, b.length), 50) };
      const t = Buffer.from(framed);
      predictForward(t, [seg], [pred]);
      // (Random bytes hold almost no field with an in-range value: only real code must change.)
      if (b !== random) assert.ok(!t.equals(framed), `forward changed something (${b.length} bytes, ${JSON.stringify({ ...p, pieces: pred.pieces.length })})`);
      assert.ok(t.subarray(0, 100).equals(framed.subarray(0, 100)) && t.subarray(100 + b.length).equals(framed.subarray(100 + b.length)), 'outside the segment untouched');
      predictInverse(t, [seg], [pred]);
      assert.ok(t.equals(framed), 'inverse(forward(x)) === x');
    }
  }
});

test('x86 prediction: the layout of a non-PIE Go binary has a pointer range, a PIE one has none', async () => {
  if (existsSync(ESBUILD)) {
    const b = await readFile(ESBUILD);
    const l = exeLayout(b, { start: 0, length: b.length });
    assert.equal(l.ptrBase, 0x400000);
    assert.ok(l.codeStart === 0 && l.codeEnd > b.length / 4 && l.codeEnd < b.length, `code ${l.codeStart}..${l.codeEnd}`);
    assert.ok(l.ptrStart === l.codeEnd && l.ptrEnd === b.length);
  }
  const ls = await readFile('/usr/bin/ls');
  const l = exeLayout(ls, { start: 0, length: ls.length });
  assert.ok(l.ptrEnd === l.ptrStart && l.ptrBase === 0, 'PIE: no pointer range');
  assert.ok(l.codeEnd > l.codeStart);
  // Not an ELF, or a truncated one: the whole file as code.
  assert.deepEqual(exeLayout(Buffer.alloc(4096, 0x41), { start: 0, length: 4096 }), { codeStart: 0, codeEnd: 4096, ptrStart: 0, ptrEnd: 0, ptrBase: 0 });
  const cut = Buffer.from(ls.subarray(0, 64));
  assert.deepEqual(exeLayout(cut, { start: 0, length: 64 }), { codeStart: 0, codeEnd: 64, ptrStart: 0, ptrEnd: 0, ptrBase: 0 });
});

async function pair(t: Parameters<typeof tempDir>[0]): Promise<{ old: Buffer; neu: Buffer }> {
  const a = await tempDir(t);
  const b = await tempDir(t);
  await mkdir(join(a, 'bin'));
  await mkdir(join(b, 'bin'));
  await writeFile(join(a, 'bin', 'tool'), await readFile('/usr/bin/ls'));
  await writeFile(join(b, 'bin', 'tool'), await readFile(existsSync('/usr/bin/dir') ? '/usr/bin/dir' : '/usr/bin/ls'));
  await writeFile(join(a, 'bin', 'tar'), await readFile('/usr/bin/tar'));
  await writeFile(join(b, 'bin', 'tar'), await readFile('/usr/bin/tar'));
  return { old: await treeStream(a), neu: await treeStream(b) };
}

test('x86p-sparse-brotli reproduces NEW and leaves OLD and NEW as they were', async (t) => {
  const { old, neu } = await pair(t);
  const oldCopy = Buffer.from(old);
  const neuCopy = Buffer.from(neu);
  const delta = await deltaWith('x86p-sparse-brotli', old, neu);
  assert.equal(decodeContainer(delta).engine, ENGINES['x86p-sparse-brotli']);
  assert.ok(old.equals(oldCopy) && neu.equals(neuCopy), 'inputs restored after computing');
  assert.ok(applyDelta(old, delta, { maxOutput: neu.length }).equals(neu));
  assert.ok(old.equals(oldCopy), 'OLD restored after applying');
  const h = decodeContainer(delta);
  const segs = decodeSegments(brotliDecompressSync(h.streams[4]!.data), old.length, neu.length);
  const preds = decodePredictions(brotliDecompressSync(h.streams[5]!.data), segs.neu);
  assert.equal(preds.length, 2);
  assert.ok(preds.every((p) => p.pieces.length > 0), 'the alignment gave pieces');
});

const BENCH = join(homedir(), '.cache', 'patchwire-bench');
test('the bench\'s esbuild pair: computeDelta picks x86p-sparse-brotli, under half of x86-sparse-brotli\'s size and 0.8x bsdiff\'s', { skip: !existsSync(join(BENCH, 'esbuild-linux-x64-0.24.2', 'package')) && 'run bench/delta.ts --only esbuild once to fetch the pair' }, async () => {
  const old = await treeStream(join(BENCH, 'esbuild-linux-x64-0.24.1', 'package'));
  const neu = await treeStream(join(BENCH, 'esbuild-linux-x64-0.24.2', 'package'));
  const r = await computeDelta(old, neu);
  assert.equal(r.engine, 'x86p-sparse-brotli');
  assert.ok(applyDelta(old, r.delta, { maxOutput: neu.length }).equals(neu));
  const plain = await deltaWith('x86-sparse-brotli', old, neu);
  assert.ok(r.delta.length < plain.length / 2, `${r.delta.length} vs x86-sparse ${plain.length}`);
  // Issue 13's target: at most 0.8x of bsdiff 4.3's 81,561 bytes on this pair (bench/README.md).
  assert.ok(r.delta.length <= 0.8 * 81_561, `${r.delta.length} bytes`);
});

const zz = (v: number) => (v < 0 ? -v * 2 - 1 : v * 2);

test('x86p-sparse-brotli: hostile predict streams fail cleanly before OLD is touched', async (t) => {
  const { old, neu } = await pair(t);
  const oldCopy = Buffer.from(old);
  const good = await deltaWith('x86p-sparse-brotli', old, neu);
  const h = decodeContainer(good);
  const segNew = x86Executables(neu);
  const L0 = rangeBound(segNew[0]!.length);
  const withPredict = (raw: Buffer, declared = raw.length): Buffer => encodeContainer(ENGINES['x86p-sparse-brotli'], old, neu, [
    ...h.streams.slice(0, 5).map((s) => ({ rawLength: s.rawLength, data: Buffer.from(s.data) })),
    { rawLength: declared, data: brotliCompressSync(raw) },
  ]);
  // One segment's header (code 0..100, no pointers) followed by the second segment's, with `pieces` in the first.
  const second = varints(0, 100, 0, 0, 0, 0);
  const first = (...pieceNums: number[]) => Buffer.concat([varints(0, 100, 0, 0, 0, pieceNums.length / 3, ...pieceNums), second]);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['overlapping pieces on OLD\'s side', first(zz(L0 + 10), 10, zz(0), zz(100), 10, zz(-110)), /overlap/],
    ['a piece past L', first(zz(2 * L0 - 5), 10, zz(0)), /leaves its segment/],
    ['an empty piece', first(zz(L0), 0, zz(0)), /leaves its segment/],
    ['OLD side below -L', first(zz(L0), 10, zz(-L0 - 5)), /leaves its segment/],
    ['a code range past the segment', Buffer.concat([varints(segNew[0]!.length, 1, 0, 0, 0, 0), second]), /leaves its segment/],
    ['a pointer base over 2^52', Buffer.concat([varints(0, 0, 0, 8, 2 ** 52 + 16, 0), second]), /pointer base/],
    ['too many pieces', varints(0, 0, 0, 0, 0, MAX_PIECES + 1), /more than/],
    ['truncated', varints(0, 100), /ends inside a number/],
    ['a number of 9 bytes', Buffer.alloc(9, 0xff), /longer than 8 bytes/],
    ['trailing bytes', Buffer.concat([encodePredictions([{ codeStart: 0, codeEnd: 0, ptrStart: 0, ptrEnd: 0, ptrBase: 0, pieces: [] }, { codeStart: 0, codeEnd: 0, ptrStart: 0, ptrEnd: 0, ptrBase: 0, pieces: [] }], segNew), Buffer.from([1])]), /unexpected bytes/],
  ];
  for (const [what, raw, re] of cases) {
    assert.throws(() => applyDelta(old, withPredict(raw), { maxOutput: neu.length }), (err: unknown) => err instanceof DeltaError && re.test(err.message), what);
    assert.ok(old.equals(oldCopy), `${what}: OLD untouched`);
  }
  assert.throws(() => applyDelta(old, withPredict(Buffer.alloc(10), 100_000_000), { maxOutput: neu.length }), /predict stream is too long/);
  const five = encodeContainer(ENGINES['x86p-sparse-brotli'], old, neu, h.streams.slice(0, 5).map((s) => ({ rawLength: s.rawLength, data: Buffer.from(s.data) })));
  assert.throws(() => applyDelta(old, five, { maxOutput: neu.length }), /has 6 streams/);
  // Valid but wrong predictions (a shift the alignment did not find): the output fails its hash; OLD restored.
  const wrong = encodePredictions(segNew.map((s) => ({ codeStart: 0, codeEnd: s.length, ptrStart: 0, ptrEnd: 0, ptrBase: 0, pieces: [{ o: 0, n: 4096, len: 50_000 }] })), segNew);
  assert.throws(() => applyDelta(old, withPredict(wrong), { maxOutput: neu.length }), /sha256/);
  assert.ok(old.equals(oldCopy));
  // Random flips anywhere: DeltaError or NEW, never a crash, OLD restored.
  const rnd = prng(11);
  expectFlipsRefused(old, neu, good, 60, rnd, (at) => assert.ok(old.equals(oldCopy), `flip at ${at}: OLD restored`));
});
