import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, brotliCompressSync } from 'node:zlib';
import { packTree } from '../src/util/archive-pack.js';
import { applyDelta, computeDelta, DeltaError, treeStream } from '../src/delta/index.js';
import { suffixArray } from '../src/delta/sais.js';
import { TEXT_SCAN, bsdiffScan, sortedSuffixes } from '../src/delta/bsdiff.js';
import { bsdiffBrotli, deltaWith, lzBrotli } from '../src/delta/index.js';
import { lzScan } from '../src/delta/lz.js';
import { decodeContainer, encodeContainer, ENGINES, FIXED_HEADER } from '../src/delta/format.js';
import { tempDir } from './helpers/temp-dir.js';
import { prng } from './helpers/prng.js';
import { varints } from './helpers/varints.js';
import { expectFlipsRefused } from './helpers/delta-flips.js';

function randomBuf(rnd: () => number, n: number, alphabet = 256): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * alphabet);
  return b;
}

async function roundTrip(old: Buffer, neu: Buffer): Promise<Buffer> {
  const { delta, engine } = await computeDelta(old, neu);
  assert.equal(decodeContainer(delta).engine, ENGINES[engine]);
  const lz = await lzBrotli(old, neu);
  assert.ok(applyDelta(old, lz, { maxOutput: neu.length }).equals(neu), 'lz-brotli reproduces NEW');
  assert.ok(delta.length <= lz.length, 'computeDelta keeps the smallest');
  const out = applyDelta(old, delta, { maxOutput: neu.length });
  assert.ok(out.equals(neu), 'applyDelta reproduces NEW');
  return delta;
}

function expectDeltaError(fn: () => unknown, re?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DeltaError, `expected DeltaError, got ${String(err)}`);
    if (re) assert.match((err as Error).message, re);
    return true;
  });
}

test('suffix array matches a naive sort on small inputs of several alphabets', () => {
  const rnd = prng(7);
  for (let t = 0; t < 400; t++) {
    const s = randomBuf(rnd, Math.floor(rnd() * 200), [2, 3, 4, 256][t % 4]);
    const naive = [...Array(s.length).keys()].sort((a, b) => Buffer.compare(s.subarray(a), s.subarray(b)));
    assert.deepEqual(Array.from(suffixArray(s)), naive);
  }
});

test('round trips: empty old, empty new, both empty, identical, random, unrelated', async () => {
  const rnd = prng(1);
  const a = randomBuf(rnd, 5000);
  const b = randomBuf(rnd, 3000);
  await roundTrip(Buffer.alloc(0), a);
  await roundTrip(a, Buffer.alloc(0));
  await roundTrip(Buffer.alloc(0), Buffer.alloc(0));
  const same = await roundTrip(a, Buffer.from(a));
  assert.ok(same.length < 300, `identical inputs give a tiny delta (${same.length})`);
  await roundTrip(a, b);
  await roundTrip(Buffer.alloc(100_000), Buffer.alloc(120_000, 1));
  await roundTrip(Buffer.alloc(100_000), Buffer.alloc(100_001));
});

test('inserted, deleted and moved blocks give small deltas', async () => {
  const rnd = prng(2);
  const old = randomBuf(rnd, 200_000);
  const ins = Buffer.concat([old.subarray(0, 50_000), randomBuf(rnd, 1000), old.subarray(50_000)]);
  const del = Buffer.concat([old.subarray(0, 50_000), old.subarray(60_000)]);
  const moved = Buffer.concat([old.subarray(100_000), old.subarray(0, 100_000)]);
  const d1 = await roundTrip(old, ins);
  const d2 = await roundTrip(old, del);
  const d3 = await roundTrip(old, moved);
  assert.ok(d1.length < 1500, `insert: ${d1.length}`);
  assert.ok(d2.length < 400, `delete: ${d2.length}`);
  assert.ok(d3.length < 400, `move: ${d3.length}`);
});

test('scan heuristics: the bsdiff candidates are plain bsdiff-brotli, round-trip, and computeDelta keeps the smallest', async () => {
  const rnd = prng(77);
  const words = ['function', 'return', 'const', 'node', 'context', 'existing', 'void 0', 'resolver', '(', ')', '{', '}', ';', '\n  '];
  const code = (n: number): string => Array.from({ length: n }, () => words[Math.floor(rnd() * words.length)]).join(' ');
  const body = code(20000);
  // OLD holds the same code three times (like typescript's bundles); NEW edits it and adds new code.
  const old = Buffer.from([body, code(2000), body, code(2000), body].join('\n'));
  const edit = (s: string): string => s.replace(/resolver/g, (m) => (rnd() < 0.2 ? 'typeResolver' : m)) + code(500);
  const neu = Buffer.from([edit(body), code(2000), edit(body), edit(body)].join('\n'));
  const suffixes = sortedSuffixes(old);
  // The defaults are Percival's, spelled out or not.
  const a = bsdiffScan(old, neu, { suffixes });
  const b = bsdiffScan(old, neu, { threshold: 8, farThreshold: 8, extNum: 2, extDen: 1 });
  assert.deepEqual(a.ctrl, b.ctrl);
  assert.ok(a.data.equals(b.data));
  assert.throws(() => bsdiffScan(old.subarray(1), neu, { suffixes }), /suffixes/);
  const sizes: number[] = [];
  for (const opts of [{}, TEXT_SCAN, { ...TEXT_SCAN, nearDistance: 0 }, { threshold: 64, extNum: 10, extDen: 9 }]) {
    const delta = await bsdiffBrotli(old, neu, { ...opts, suffixes });
    assert.equal(decodeContainer(delta).engine, ENGINES['bsdiff-brotli']);
    assert.ok(applyDelta(old, delta, { maxOutput: neu.length }).equals(neu), `round trip with ${JSON.stringify(opts)}`);
    sizes.push(delta.length);
  }
  const lz = await lzBrotli(old, neu, { suffixes });
  assert.equal(decodeContainer(lz).engine, ENGINES['lz-brotli']);
  assert.ok(applyDelta(old, lz, { maxOutput: neu.length }).equals(neu), 'lz-brotli round trip');
  const { delta, engine } = await computeDelta(old, neu);
  // Its candidates include sparse-brotli with Percival's scan and lz-brotli (all at Brotli 11 at this size).
  const sparse = await deltaWith('sparse-brotli', old, neu);
  assert.ok(applyDelta(old, sparse, { maxOutput: neu.length }).equals(neu), 'sparse-brotli round trip');
  assert.ok(delta.length <= Math.min(sparse.length, lz.length), `computeDelta keeps the smallest (${delta.length})`);
  assert.equal(decodeContainer(delta).engine, ENGINES[engine]);
  assert.ok(applyDelta(old, delta, { maxOutput: neu.length }).equals(neu));
});

test('treeStream equals the gunzipped packTree archive; a renamed file costs almost nothing', async (t) => {
  const root = await tempDir(t, 'pw-delta-');
  const rnd = prng(3);
  const v1 = join(root, 'v1');
  await mkdir(join(v1, 'lib'), { recursive: true });
  await writeFile(join(v1, 'lib', 'tsc.js'), randomBuf(rnd, 300_000, 64));
  await writeFile(join(v1, 'README.md'), 'hello\n');
  await writeFile(join(v1, 'lib', 'util.js'), randomBuf(rnd, 50_000, 64));
  const archive = join(root, 'v1.tgz');
  await packTree(v1, archive);
  const s1 = await treeStream(v1);
  assert.ok(gunzipSync(await readFile(archive)).equals(s1), 'gunzip(packTree) === treeStream');

  const v2 = join(root, 'v2');
  await packTree(v1, join(root, 'copy.tar'), undefined, { gzip: false });
  assert.ok((await readFile(join(root, 'copy.tar'))).equals(s1));
  await mkdir(join(v2, 'lib'), { recursive: true });
  await writeFile(join(v2, 'lib', 'tsc.js'), await readFile(join(v1, 'lib', 'tsc.js')));
  await rename(join(v2, 'lib', 'tsc.js'), join(v2, 'lib', '_tsc.js')); // renamed (and moved in the stream)
  await writeFile(join(v2, 'README.md'), 'hello again\n');
  await writeFile(join(v2, 'lib', 'util.js'), await readFile(join(v1, 'lib', 'util.js')));
  const s2 = await treeStream(v2);
  const delta = await roundTrip(s1, s2);
  assert.ok(delta.length < 1000, `rename delta is ${delta.length} bytes for a ${s2.length}-byte tree`);
});

test('header checks: wrong old tree, maxOutput, magic, engine', async () => {
  const rnd = prng(4);
  const old = randomBuf(rnd, 10_000);
  const neu = Buffer.concat([old.subarray(0, 5000), Buffer.from('changed'), old.subarray(5000)]);
  const { delta } = await computeDelta(old, neu);
  const other = Buffer.from(old);
  other[10] ^= 1;
  expectDeltaError(() => applyDelta(other, delta, { maxOutput: 1e9 }), /another old tree/);
  expectDeltaError(() => applyDelta(old.subarray(1), delta, { maxOutput: 1e9 }), /another old tree/);
  expectDeltaError(() => applyDelta(old, delta, { maxOutput: neu.length - 1 }), /more than the allowed/);
  const badMagic = Buffer.from(delta);
  badMagic[0] = 0x41;
  expectDeltaError(() => applyDelta(old, badMagic, { maxOutput: 1e9 }), /magic/);
  const badEngine = Buffer.from(delta);
  badEngine[8] = 99;
  expectDeltaError(() => applyDelta(old, badEngine, { maxOutput: 1e9 }), /unknown engine/);
  expectDeltaError(() => applyDelta(old, Buffer.alloc(0), { maxOutput: 1e9 }));
  assert.throws(() => applyDelta(old, delta, { maxOutput: -1 }), TypeError);
});

test('corrupt deltas: flipped bytes in every region, truncation, huge values -> DeltaError, never a crash', async () => {
  const rnd = prng(5);
  const old = randomBuf(rnd, 40_000, 16);
  const neu = Buffer.concat([old.subarray(0, 20_000), randomBuf(rnd, 500), old.subarray(20_500, 39_000)]);
  neu[100] ^= 0x55;
  const { delta } = await computeDelta(old, neu);
  const h = decodeContainer(delta);
  const ctrlStart = FIXED_HEADER + 16 * h.streams.length;
  const dataStart = ctrlStart + h.streams[0]!.data.length;
  const regions: Array<[string, number, number]> = [
    ['header', 0, FIXED_HEADER],
    ['stream table', FIXED_HEADER, ctrlStart],
    ['control', ctrlStart, dataStart],
    ['data', dataStart, delta.length],
  ];
  for (const [name, from, to] of regions) {
    for (let k = 0; k < 40; k++) {
      const bad = Buffer.from(delta);
      const at = from + Math.floor(rnd() * (to - from));
      bad[at] ^= 1 + Math.floor(rnd() * 255);
      let out: Buffer | undefined;
      try {
        out = applyDelta(old, bad, { maxOutput: 1e8 });
      } catch (err) {
        assert.ok(err instanceof DeltaError, `${name} byte ${at}: ${String(err)}`);
        continue;
      }
      // A flip that changes nothing that matters (e.g. unused brotli padding) must still give NEW.
      assert.ok(out.equals(neu), `${name} byte ${at}: wrong output accepted`);
    }
  }
  for (const cut of [1, 10, FIXED_HEADER, ctrlStart + 1, dataStart + 3, delta.length - 1]) {
    expectDeltaError(() => applyDelta(old, delta.subarray(0, cut), { maxOutput: 1e8 }));
  }
  expectDeltaError(() => applyDelta(old, Buffer.concat([delta, Buffer.from([0])]), { maxOutput: 1e8 }), /unexpected bytes/);
});

/** Builds a delta by hand from raw control numbers and data, to reach the patcher's checks. */
function forged(old: Buffer, neu: Buffer, ctrl: Buffer, data: Buffer, declared = { ctrl: ctrl.length, data: data.length }): Buffer {
  return encodeContainer(ENGINES['bsdiff-brotli'], old, neu, [
    { rawLength: declared.ctrl, data: brotliCompressSync(ctrl) },
    { rawLength: declared.data, data: brotliCompressSync(data) },
  ]);
}

test('hostile control values and stream sizes are refused before any big allocation', () => {
  const old = Buffer.from('0123456789abcdef');
  const neu = Buffer.from('0123456789ABCDEF');
  const data = Buffer.alloc(16);
  expectDeltaError(() => applyDelta(old, forged(old, neu, varints(2 ** 50, 0, 0), data), { maxOutput: 100 }), /add length/);
  expectDeltaError(() => applyDelta(old, forged(old, neu, varints(0, 2 ** 50, 0), data), { maxOutput: 100 }), /copy length/);
  expectDeltaError(() => applyDelta(old, forged(old, neu, varints(0, 0, 2 ** 40), data), { maxOutput: 100 }), /seek/);
  expectDeltaError(() => applyDelta(old, forged(old, neu, varints(0, 0, 1), data), { maxOutput: 100 }), /seek/); // -1
  expectDeltaError(() => applyDelta(old, forged(old, neu, varints(4, 0, 16, 8, 0, 0), data), { maxOutput: 100 }), /past the end of the old/);
  expectDeltaError(() => applyDelta(old, forged(old, neu, Buffer.alloc(10, 0xff), data), { maxOutput: 100 }), /longer than 8 bytes/);
  expectDeltaError(() => applyDelta(old, forged(old, neu, Buffer.from([0x80]), data), { maxOutput: 100 }), /ends inside/);
  expectDeltaError(() => applyDelta(old, forged(old, neu, varints(8, 0, 0), data), { maxOutput: 100 }), /covers 8 of 16/);
  expectDeltaError(() => applyDelta(old, forged(old, neu, varints(16, 0, 0), data), { maxOutput: 100 }), /sha256/);
  // Streams that decompress to more than declared (a zip bomb) stop at the declared size.
  const bomb = Buffer.alloc(50_000_000);
  expectDeltaError(() => applyDelta(old, forged(old, neu, varints(16, 0, 0), bomb, { ctrl: 3, data: 16 }), { maxOutput: 100 }), /data stream/);
  expectDeltaError(() => applyDelta(old, forged(old, neu, bomb, data, { ctrl: 100, data: 16 }), { maxOutput: 100 }), /control stream/);
  // A header announcing a huge output is refused by maxOutput before anything is allocated.
  const huge = forged(old, neu, varints(16, 0, 0), data);
  huge.writeBigUInt64BE(2n ** 52n, 52);
  expectDeltaError(() => applyDelta(old, huge, { maxOutput: 1e9 }), /more than the allowed/);
  huge.writeBigUInt64BE(2n ** 63n, 52);
  expectDeltaError(() => applyDelta(old, huge, { maxOutput: 1e9 }), /out of range/);
  // And a huge declared stream length is refused against the output size.
  const bigCtrl = forged(old, neu, varints(16, 0, 0), data);
  bigCtrl.writeBigUInt64BE(2n ** 40n, FIXED_HEADER);
  expectDeltaError(() => applyDelta(old, bigCtrl, { maxOutput: 100 }), /control stream is too long/);
});

test('property: 200 random edit scripts round-trip (seeded)', async () => {
  const rnd = prng(20261126);
  for (let round = 0; round < 200; round++) {
    const alphabet = [4, 16, 256][round % 3]!;
    let old: Buffer = randomBuf(rnd, Math.floor(rnd() * 6000), alphabet);
    let neu: Buffer = Buffer.from(old);
    const edits = 1 + Math.floor(rnd() * 6);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rnd() * (neu.length + 1));
      const len = Math.floor(rnd() * 300);
      switch (Math.floor(rnd() * 5)) {
        case 0: // insert random
          neu = Buffer.concat([neu.subarray(0, at), randomBuf(rnd, len, alphabet), neu.subarray(at)]);
          break;
        case 1: // delete
          neu = Buffer.concat([neu.subarray(0, at), neu.subarray(at + len)]);
          break;
        case 2: // move a block
        {
          const block = Buffer.from(neu.subarray(at, at + len));
          const rest = Buffer.concat([neu.subarray(0, at), neu.subarray(at + len)]);
          const to = Math.floor(rnd() * (rest.length + 1));
          neu = Buffer.concat([rest.subarray(0, to), block, rest.subarray(to)]);
          break;
        }
        case 3: // duplicate a block of OLD
        {
          const from = Math.floor(rnd() * (old.length + 1));
          neu = Buffer.concat([neu.subarray(0, at), old.subarray(from, from + len), neu.subarray(at)]);
          break;
        }
        default: // byte flips
          for (let i = 0; i < len / 10 && neu.length > 0; i++) neu[Math.floor(rnd() * neu.length)] = Math.floor(rnd() * alphabet);
      }
    }
    if (round % 17 === 0) [old, neu] = [neu, old];
    const { delta } = await computeDelta(old, neu);
    const out = applyDelta(old, delta, { maxOutput: neu.length });
    assert.ok(out.equals(neu), `round ${round}: old ${old.length} new ${neu.length}`);
    const opts = [{}, { minMatch: 4, minRep: 1, repBias: 0, neighbours: 0 }, { minMatch: 12, minRep: 2, repBias: 4 }][round % 3]!;
    const lz = await lzBrotli(old, neu, opts);
    assert.ok(applyDelta(old, lz, { maxOutput: neu.length }).equals(neu), `lz round ${round} ${JSON.stringify(opts)}`);
  }
});

test('degenerate inputs stay fast: long runs and periodic data', async () => {
  const t0 = performance.now();
  const zeros = Buffer.alloc(2_000_000);
  const z2 = Buffer.from(zeros);
  for (let i = 0; i < z2.length; i += 1000) z2[i] = 1;
  await roundTrip(zeros, z2);
  const periodic = Buffer.alloc(1_000_000);
  for (let i = 0; i < periodic.length; i++) periodic[i] = 'abcabcabd'.charCodeAt(i % 9);
  const p2 = Buffer.concat([periodic.subarray(0, 400_000), Buffer.from('x'), periodic.subarray(400_003)]);
  await roundTrip(periodic, p2);
  assert.ok(performance.now() - t0 < 60_000, `took ${performance.now() - t0} ms`);
});

// ---- lz-brotli (engine 2) ----

const leb = varints;
const zig = (d: number): number => (d < 0 ? -d * 2 - 1 : d * 2);

interface LzParts {
  literals: Buffer;
  litLens: Buffer;
  matchLens: Buffer;
  codes: Buffer;
  offsets: Buffer;
}
/** Builds an lz-brotli delta by hand; `declared` overrides the stream table's decoded lengths. */
function forgedLz(old: Buffer, neu: Buffer, p: LzParts, declared: Partial<Record<keyof LzParts, number>> = {}): Buffer {
  const keys: Array<keyof LzParts> = ['literals', 'litLens', 'matchLens', 'codes', 'offsets'];
  return encodeContainer(ENGINES['lz-brotli'], old, neu, keys.map((k) => ({ rawLength: declared[k] ?? p[k].length, data: brotliCompressSync(p[k]) })));
}

/** The format's meaning, spelled out naively: sequences over the virtual buffer OLD ++ NEW. */
function lzReference(old: Buffer, p: { lits: number[]; seqs: Array<[number, number, number, number?]> }, tail: number[]): Buffer {
  const v = Array.from(old);
  let rep = [old.length, old.length, old.length];
  let lp = 0;
  for (const [lit, len, code, delta] of p.seqs) {
    for (let k = 0; k < lit; k++) v.push(p.lits[lp++]!);
    let dist: number;
    if (code === 3) {
      dist = rep[0]! + delta!;
      rep = [dist, rep[0]!, rep[1]!];
    } else {
      dist = rep[code]!;
      rep = code === 0 ? rep : code === 1 ? [rep[1]!, rep[0]!, rep[2]!] : [rep[2]!, rep[0]!, rep[1]!];
    }
    for (let k = 0; k < len; k++) v.push(v[v.length - dist]!);
  }
  v.push(...tail);
  return Buffer.from(v.slice(old.length));
}

test('lz-brotli: on a typescript-like fixture repeats dominate, the size is within 10% of bsdiff, and it round-trips', async () => {
  const rnd = prng(78);
  const words = ['function', 'return', 'const', 'node', 'context', 'existing', 'void 0', 'resolver', '(', ')', '{', '}', ';', '\n  '];
  const code = (n: number): string => Array.from({ length: n }, () => words[Math.floor(rnd() * words.length)]).join(' ');
  const body = code(20000);
  const old = Buffer.from([body, code(2000), body].join('\n'));
  // Same-length substitutions keep OLD and NEW aligned: after each, the alignment repeats.
  const neu = Buffer.from([body.replace(/resolver/g, (m) => (rnd() < 0.1 ? 'Resolver' : m)), code(300), body].join('\n'));
  const suffixes = sortedSuffixes(old);
  assert.throws(() => lzScan(old.subarray(1), neu, { suffixes }), /suffixes/);
  const s = lzScan(old, neu, { suffixes });
  // Small edits at the same alignment are repeat matches (code 0), not new distances.
  const repeats = s.codes.filter((c) => c === 0).length;
  assert.ok(repeats > s.codes.length / 2, `repeat matches ${repeats} of ${s.codes.length}`);
  const lz = await lzBrotli(old, neu, { suffixes });
  assert.ok(applyDelta(old, lz, { maxOutput: neu.length }).equals(neu));
  const bs = await bsdiffBrotli(old, neu, { ...TEXT_SCAN, suffixes });
  assert.ok(lz.length <= bs.length * 1.1, `lz ${lz.length} vs bsdiff ${bs.length}`);
});

test('lz-brotli: random forged sequences (repeat codes, overlapping copies from NEW, OLD->NEW crossings) match the reference', () => {
  const rnd = prng(9090);
  for (let round = 0; round < 300; round++) {
    const old = randomBuf(rnd, Math.floor(rnd() * 64), 4);
    const lits: number[] = [];
    const seqs: Array<[number, number, number, number?]> = [];
    let rep = [old.length, old.length, old.length];
    let vlen = old.length;
    const nseq = Math.floor(rnd() * 12);
    for (let k = 0; k < nseq; k++) {
      const lit = Math.floor(rnd() * 4);
      for (let j = 0; j < lit; j++) lits.push(Math.floor(rnd() * 256));
      vlen += lit;
      if (vlen === 0) continue;
      const len = 1 + Math.floor(rnd() * 40);
      let code = Math.floor(rnd() * 4);
      const dist = code === 3 ? 1 + Math.floor(rnd() * vlen) : rep[code]!;
      if (dist < 1 || dist > vlen) code = 3;
      if (code === 3) {
        const d = dist < 1 || dist > vlen ? 1 + Math.floor(rnd() * vlen) : dist;
        seqs.push([lit, len, 3, d - rep[0]!]);
        rep = [d, rep[0]!, rep[1]!];
      } else {
        seqs.push([lit, len, code]);
        rep = code === 0 ? rep : code === 1 ? [rep[1]!, rep[0]!, rep[2]!] : [rep[2]!, rep[0]!, rep[1]!];
      }
      vlen += len;
    }
    // A dropped sequence (no source yet) leaves its literals in the stream: keep the bookkeeping honest.
    const used = seqs.reduce((a, q) => a + q[0], 0);
    const tail = lits.splice(used);
    const neu = lzReference(old, { lits, seqs }, tail);
    const parts: LzParts = {
      literals: Buffer.from([...lits, ...tail]),
      litLens: leb(...seqs.map((q) => q[0])),
      matchLens: leb(...seqs.map((q) => q[1] - 1)),
      codes: Buffer.from(seqs.map((q) => q[2])),
      offsets: leb(...seqs.filter((q) => q[2] === 3).map((q) => zig(q[3]!))),
    };
    const out = applyDelta(old, forgedLz(old, neu, parts), { maxOutput: neu.length });
    assert.ok(out.equals(neu), `round ${round}`);
  }
});

test('lz-brotli: repeat-offset edge cases', () => {
  const old = Buffer.from('abcdefghijklmnop');
  const L = old.length;
  const mk = (neu: Buffer, litBytes: string, seqs: Array<[number, number, number, number?]>): Buffer =>
    forgedLz(old, neu, {
      literals: Buffer.from(litBytes, 'latin1'),
      litLens: leb(...seqs.map((q) => q[0])),
      matchLens: leb(...seqs.map((q) => q[1] - 1)),
      codes: Buffer.from(seqs.map((q) => q[2])),
      offsets: leb(...seqs.filter((q) => q[2] === 3).map((q) => zig(q[3]!))),
    });
  // Initial repeats are the identity alignment: code 0/1/2 all copy OLD[np..].
  for (const c of [0, 1, 2]) {
    assert.equal(applyDelta(old, mk(old, '', [[0, 16, c]]), { maxOutput: 16 }).toString(), old.toString());
  }
  // A substitution keeps the alignment: "abcd" X "fghijklmnop".
  const sub = Buffer.from('abcdXfghijklmnop');
  assert.ok(applyDelta(old, mk(sub, 'X', [[0, 4, 0], [1, 11, 0]]), { maxOutput: 16 }).equals(sub));
  // A repeated block takes a new distance, then code 1 returns to the identity alignment:
  // 8 bytes at dist L; dist L+4 (delta +4) copies OLD[4..8] "efgh" again; rep1 (L) at np 12 -> "mnop".
  const expect = Buffer.from('abcdefghefghmnop');
  assert.ok(applyDelta(old, mk(expect, '', [[0, 8, 0], [0, 4, 3, 4], [0, 4, 1]]), { maxOutput: 16 }).equals(expect));
  // Code 2 rotates the third distance to the front.
  const seqs: Array<[number, number, number, number?]> = [[0, 2, 0], [0, 2, 3, 2], [0, 2, 3, 2], [0, 2, 2]];
  // np0 dist L "ab"; np2 dist L+2 -> OLD[0] "ab"; np4 dist L+4 -> OLD[0] "ab"; reps [L+4, L+2, L]; code 2 -> L at np6 -> OLD[6] "gh".
  const r2 = Buffer.from('abababgh');
  assert.ok(applyDelta(old, mk(r2, '', seqs), { maxOutput: 8 }).equals(r2));
  // A distance reaching into NEW-so-far: run-length style overlap (dist 1 after one literal).
  const run = Buffer.from('zzzzzzzzzz');
  assert.ok(applyDelta(old, mk(run, 'z', [[1, 9, 3, 1 - L]]), { maxOutput: 10 }).equals(run));
  // Copy crossing from the end of OLD into NEW: at np 2, dist L+2-14 = 4 reads OLD[14..16] then NEW[0..].
  const cross = Buffer.from('XYopXYop');
  assert.ok(applyDelta(old, mk(cross, 'XY', [[2, 6, 3, 4 - L]]), { maxOutput: 8 }).equals(cross));
  // With an empty OLD the initial repeats (distance 0) are invalid.
  expectDeltaError(() => applyDelta(Buffer.alloc(0), forgedLz(Buffer.alloc(0), Buffer.from('a'), { literals: Buffer.alloc(0), litLens: leb(0), matchLens: leb(0), codes: Buffer.from([0]), offsets: Buffer.alloc(0) }), { maxOutput: 10 }), /distance/);
  // Distances out of range either way, and a repeat of a bad distance.
  expectDeltaError(() => applyDelta(old, mk(old, '', [[0, 4, 3, 1]]), { maxOutput: 16 }), /distance/); // L+1 > L + 0
  expectDeltaError(() => applyDelta(old, mk(old, '', [[0, 4, 3, -L]]), { maxOutput: 16 }), /distance/); // 0
  expectDeltaError(() => applyDelta(old, mk(old, '', [[0, 4, 3, 2 ** 50]]), { maxOutput: 16 }), /distance/);
  expectDeltaError(() => applyDelta(old, mk(old, '', [[0, 4, 0], [0, 4, 3, -(2 ** 50)]]), { maxOutput: 16 }), /distance/);
  expectDeltaError(() => applyDelta(old, mk(old, '', [[0, 4, 4]]), { maxOutput: 16 }), /unknown sequence code/);
});

test('lz-brotli: hostile streams -> DeltaError before any big allocation', () => {
  const old = Buffer.from('0123456789abcdef');
  const neu = Buffer.from('0123456789ABCDEF');
  const ok: LzParts = { literals: Buffer.from('ABCDEF'), litLens: leb(0), matchLens: leb(9), codes: Buffer.from([0]), offsets: Buffer.alloc(0) };
  assert.ok(applyDelta(old, forgedLz(old, neu, ok), { maxOutput: 16 }).equals(neu));
  const bad = (p: Partial<LzParts>, declared: Partial<Record<keyof LzParts, number>> = {}): Buffer => forgedLz(old, neu, { ...ok, ...p }, declared);
  expectDeltaError(() => applyDelta(old, bad({ litLens: leb(2 ** 50) }), { maxOutput: 100 }), /literal run/);
  expectDeltaError(() => applyDelta(old, bad({ litLens: leb(7) }), { maxOutput: 100 }), /literal stream/);
  expectDeltaError(() => applyDelta(old, bad({ matchLens: leb(2 ** 50) }), { maxOutput: 100 }), /match passes/);
  expectDeltaError(() => applyDelta(old, bad({ matchLens: leb(16) }), { maxOutput: 100 }), /match passes/);
  expectDeltaError(() => applyDelta(old, bad({ matchLens: leb(8) }), { maxOutput: 100 }), /literals left/);
  expectDeltaError(() => applyDelta(old, bad({ literals: Buffer.from('ABCDEFG') }), { maxOutput: 100 }), /literals left/);
  expectDeltaError(() => applyDelta(old, bad({ litLens: leb(0, 0) }), { maxOutput: 100 }), /unused numbers/);
  expectDeltaError(() => applyDelta(old, bad({ offsets: leb(1) }), { maxOutput: 100 }), /unused numbers/);
  expectDeltaError(() => applyDelta(old, bad({ codes: Buffer.from([3]) }), { maxOutput: 100 }), /offset stream ends inside/);
  expectDeltaError(() => applyDelta(old, bad({ litLens: Buffer.alloc(8, 0xff) }), { maxOutput: 100 }), /longer than 8 bytes/);
  expectDeltaError(() => applyDelta(old, bad({ matchLens: Buffer.from([0x80]) }), { maxOutput: 100 }), /ends inside/);
  expectDeltaError(() => applyDelta(old, bad({ codes: Buffer.from([0, 0]) }), { maxOutput: 100 }), /ends inside/);
  expectDeltaError(() => applyDelta(old, forgedLz(old, neu, { ...ok, literals: Buffer.from('ABCDEe') }), { maxOutput: 100 }), /sha256/);
  // Stream counts and declared sizes.
  expectDeltaError(() => applyDelta(old, encodeContainer(ENGINES['lz-brotli'], old, neu, [{ rawLength: 0, data: brotliCompressSync(Buffer.alloc(0)) }]), { maxOutput: 100 }), /5 streams/);
  const bomb = Buffer.alloc(50_000_000);
  expectDeltaError(() => applyDelta(old, bad({ literals: bomb }, { literals: 6 }), { maxOutput: 100 }), /literals stream/);
  expectDeltaError(() => applyDelta(old, bad({ litLens: bomb }, { litLens: 1 }), { maxOutput: 100 }), /literal length stream/);
  for (const [k, n] of [['literals', 17], ['codes', 17], ['litLens', 9], ['matchLens', 9], ['offsets', 9]] as const) {
    const d = bad({});
    const i = ['literals', 'litLens', 'matchLens', 'codes', 'offsets'].indexOf(k);
    d.writeBigUInt64BE(BigInt(n), FIXED_HEADER + 16 * i);
    expectDeltaError(() => applyDelta(old, d, { maxOutput: 100 }), /too long|more /);
    d.writeBigUInt64BE(2n ** 40n, FIXED_HEADER + 16 * i);
    expectDeltaError(() => applyDelta(old, d, { maxOutput: 100 }), /too long|more /);
  }
  // maxOutput caps the output before anything is decoded.
  expectDeltaError(() => applyDelta(old, forgedLz(old, neu, ok), { maxOutput: 15 }), /more than the allowed/);
  const huge = forgedLz(old, neu, ok);
  huge.writeBigUInt64BE(2n ** 52n, 52);
  expectDeltaError(() => applyDelta(old, huge, { maxOutput: 1e9 }), /more than the allowed/);
});

test('lz-brotli: corrupt deltas (flips in every stream, truncation) -> DeltaError or NEW, never a crash', async () => {
  const rnd = prng(55);
  const old = randomBuf(rnd, 40_000, 16);
  const neu = Buffer.concat([old.subarray(0, 20_000), randomBuf(rnd, 500, 16), old.subarray(20_500, 39_000), old.subarray(1000, 3000)]);
  for (let i = 0; i < 50; i++) neu[Math.floor(rnd() * neu.length)] ^= 0x55;
  const delta = await lzBrotli(old, neu, { minMatch: 6, minRep: 2 });
  assert.ok(applyDelta(old, delta, { maxOutput: neu.length }).equals(neu));
  const h = decodeContainer(delta);
  let at = FIXED_HEADER + 16 * h.streams.length;
  const regions: Array<[string, number, number]> = [['header', 0, FIXED_HEADER], ['stream table', FIXED_HEADER, at]];
  h.streams.forEach((s, i) => {
    regions.push([`stream ${i}`, at, at + s.data.length]);
    at += s.data.length;
  });
  for (const [name, from, to] of regions) {
    if (to <= from) continue;
    for (let k = 0; k < 40; k++) {
      const bad = Buffer.from(delta);
      const p = from + Math.floor(rnd() * (to - from));
      bad[p] ^= 1 + Math.floor(rnd() * 255);
      let out: Buffer | undefined;
      try {
        out = applyDelta(old, bad, { maxOutput: 1e8 });
      } catch (err) {
        assert.ok(err instanceof DeltaError, `${name} byte ${p}: ${String(err)}`);
        continue;
      }
      assert.ok(out.equals(neu), `${name} byte ${p}: wrong output accepted`);
    }
  }
  for (const cut of [1, FIXED_HEADER, FIXED_HEADER + 20, delta.length - 1]) {
    expectDeltaError(() => applyDelta(old, delta.subarray(0, cut), { maxOutput: 1e8 }));
  }
});

test('the lower-cost mode: one lz-brotli candidate that applies to NEW like the full mode', async () => {
  const rnd = prng(8);
  const old = randomBuf(rnd, 200_000, 16);
  const neu = Buffer.concat([old.subarray(0, 90_000), randomBuf(rnd, 3_000), old.subarray(95_000)]);
  const { delta, engine } = await computeDelta(old, neu, { lowCost: true });
  assert.equal(engine, 'lz-brotli');
  assert.equal(decodeContainer(delta).engine, ENGINES['lz-brotli']);
  assert.ok(applyDelta(old, delta, { maxOutput: neu.length }).equals(neu), 'applyDelta reproduces NEW');
  assert.ok(delta.length < neu.length / 10, `a delta, not a copy: ${delta.length} bytes`);
});

/** A sparse-brotli delta from raw streams [control, runs, diffs, extra], to reach the patcher's checks. */
function forgedSparse(old: Buffer, neu: Buffer, raw: Buffer[], declared = raw.map((b) => b.length)): Buffer {
  return encodeContainer(ENGINES['sparse-brotli'], old, neu, raw.map((b, i) => ({ rawLength: declared[i]!, data: brotliCompressSync(b) })));
}

test('sparse-brotli: round trips, and hostile runs, diffs and extra streams -> DeltaError before any big allocation', async () => {
  const rnd = prng(21);
  const old = randomBuf(rnd, 30_000, 8);
  const neu = Buffer.concat([old.subarray(0, 10_000), randomBuf(rnd, 300), old.subarray(10_000, 29_000)]);
  for (let i = 0; i < neu.length; i += 997) neu[i] ^= 3;
  const good = await deltaWith('sparse-brotli', old, neu);
  assert.ok(applyDelta(old, good, { maxOutput: neu.length }).equals(neu));
  // Edge cases of the runs: everything zero (identical trees), everything different, empty trees.
  for (const [o, n] of [[old, old], [old, randomBuf(rnd, 5000)], [Buffer.alloc(0), neu], [old, Buffer.alloc(0)], [Buffer.alloc(100), Buffer.alloc(100, 1)]] as Array<[Buffer, Buffer]>) {
    assert.ok(applyDelta(o, await deltaWith('sparse-brotli', o, n), { maxOutput: n.length }).equals(n));
  }
  const a = Buffer.from('0123456789abcdef');
  const b = Buffer.from('0123456789ABCDEF');
  const v = varints;
  const diffs = Buffer.from(b.map((c, i) => (c - a[i]!) & 0xff)).subarray(10);
  // The honest one: add 16 (10 equal, 6 differing), copy 0.
  assert.ok(applyDelta(a, forgedSparse(a, b, [v(16, 0, 0), v(10, 6), diffs, Buffer.alloc(0)]), { maxOutput: 100 }).equals(b));
  const cases: Array<[Buffer[], RegExp, number[]?]> = [
    [[v(16, 0, 0), v(0, 0), diffs, Buffer.alloc(0)], /empty pair/],
    [[v(16, 0, 0), v(2 ** 50, 1), diffs, Buffer.alloc(0)], /longer than the output/],
    [[v(16, 0, 0), v(10, 6), diffs.subarray(0, 5), Buffer.alloc(0)], /diffs stream/],
    [[v(16, 0, 0), v(10, 7), diffs, Buffer.alloc(0)], /unused/],
    [[v(16, 0, 0), v(10), diffs, Buffer.alloc(0)], /ends inside a number/],
    [[v(16, 0, 0), v(10, 6, 1, 1), diffs, Buffer.alloc(0)], /unused/],
    [[v(10, 6, 0), v(10, 0), Buffer.alloc(0), Buffer.alloc(5)], /extra stream/],
    [[v(16, 0, 0), v(10, 6), Buffer.concat([diffs, Buffer.from([1])]), Buffer.alloc(0)], /unused/],
    [[v(17, 0, 0), v(17, 0), Buffer.alloc(0), Buffer.alloc(0)], /add length|past the end/],
    [[v(16, 0, 0), Buffer.alloc(9, 0xff), diffs, Buffer.alloc(0)], /longer than 8 bytes/],
    [[v(16, 0, 0), v(10, 6), diffs], /has 4 streams/],
  ];
  for (const [raw, re] of cases) expectDeltaError(() => applyDelta(a, forgedSparse(a, b, raw), { maxOutput: 100 }), re);
  // Declared sizes beyond the output are refused before decompressing; a bomb stops at its declared size.
  expectDeltaError(() => applyDelta(a, forgedSparse(a, b, [v(16, 0, 0), v(10, 6), diffs, Buffer.alloc(0)], [3, 2, 2 ** 40, 0]), { maxOutput: 100 }), /longer than the output/);
  expectDeltaError(() => applyDelta(a, forgedSparse(a, b, [v(16, 0, 0), v(10, 6), diffs, Buffer.alloc(0)], [3, 2 ** 30, 6, 0]), { maxOutput: 100 }), /runs stream is too long/);
  expectDeltaError(() => applyDelta(a, forgedSparse(a, b, [v(16, 0, 0), Buffer.alloc(10_000_000), diffs, Buffer.alloc(0)], [3, 2, 6, 0]), { maxOutput: 100 }), /runs stream/);
  // Flips and truncations of a real one: DeltaError or NEW.
  expectFlipsRefused(old, neu, good, 80, rnd);
  for (const cut of [FIXED_HEADER + 10, Math.floor(good.length / 2), good.length - 1]) expectDeltaError(() => applyDelta(old, good.subarray(0, cut), { maxOutput: neu.length }));
});
