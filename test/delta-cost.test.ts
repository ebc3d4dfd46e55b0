import { test } from 'node:test';
import assert from 'node:assert/strict';
import { suffixArray } from '../src/delta/sais.js';
import { TEXT_SCAN, bsdiffControl, bsdiffScan, sortedSuffixes, sparseFromControl, sparseStreams } from '../src/delta/bsdiff.js';
import { prefixMatcher, suffixSearcher } from '../src/delta/sa-search.js';
import { x86Forward } from '../src/delta/x86.js';
import { prng } from './helpers/prng.js';

/** Issue 13, delta cost: the faster parts give the same answers as the plain ones they replace. */

/** Inputs that make SA-IS recurse deeply or hit its edge cases: runs, periods, Fibonacci words, repeats. */
function structured(rnd: () => number, n: number, kind: number): Buffer {
  const b = Buffer.alloc(n);
  if (kind === 0) b.fill(7);
  else if (kind === 1) for (let i = 0; i < n; i++) b[i] = i % 3 === 0 ? 1 : 0;
  else if (kind === 2) {
    let x = 'a';
    let y = 'ab';
    while (y.length < n) [x, y] = [y, y + x];
    b.write(y.slice(0, n), 'latin1');
  } else if (kind === 3) {
    const unit = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 4)));
    for (let i = 0; i < n; i++) b[i] = rnd() < 0.01 ? Math.floor(rnd() * 256) : unit[i % unit.length]!;
  } else {
    // Runs of zeros (tar padding) between random blocks and copies of earlier blocks.
    for (let i = 0; i < n; ) {
      const len = 1 + Math.floor(rnd() * 300);
      const r = rnd();
      for (let j = 0; j < len && i < n; j++, i++) b[i] = r < 0.3 ? 0 : r < 0.6 && i > 600 ? b[i - 600]! : Math.floor(rnd() * 256);
    }
  }
  return b;
}

test('suffix array: the same as a plain sort on runs, periods, Fibonacci words and repeats', () => {
  const rnd = prng(11);
  for (let t = 0; t < 60; t++) {
    const s = structured(rnd, 1 + Math.floor(rnd() * 1200), t % 5);
    const naive = [...Array(s.length).keys()].sort((a, b) => Buffer.compare(s.subarray(a), s.subarray(b)));
    assert.deepEqual(Array.from(suffixArray(s)), naive, `kind ${t % 5}, ${s.length} bytes`);
  }
});

test('suffix array of 300 KB with long repeats is a sorted permutation; sortedSuffixes rebuilds into the same buffer', () => {
  const rnd = prng(12);
  const s = structured(rnd, 300_000, 4);
  const sa = suffixArray(s);
  const seen = new Uint8Array(s.length);
  for (const p of sa) seen[p] = 1;
  assert.ok(seen.every((x) => x === 1), 'a permutation');
  for (let i = 1; i < sa.length; i++) assert.ok(Buffer.compare(s.subarray(sa[i - 1]!), s.subarray(sa[i]!)) < 0, `sorted at ${i}`);
  const I = sortedSuffixes(s);
  assert.equal(I[0], s.length);
  assert.deepEqual(I.subarray(1), sa);
  const other = structured(rnd, 300_000, 3);
  const again = sortedSuffixes(other, I);
  assert.equal(again, I, 'the same buffer');
  assert.deepEqual(again, sortedSuffixes(other), 'rebuilt correctly');
  assert.throws(() => sortedSuffixes(s.subarray(1), I), /length/);
});

/** The full-range binary search the two-byte start replaces (the code before issue 13's cost work). */
function plainSearch(I: Int32Array, old: Uint8Array, neu: Uint8Array, at: number): { len: number; index: number } {
  const oldsize = old.length;
  const nrem = neu.length - at;
  let lo = 0;
  let hi = oldsize;
  let lcpLo = 0;
  let lcpHi = 0;
  {
    const p = I[hi]!;
    const max = Math.min(oldsize - p, nrem);
    while (lcpHi < max && old[p + lcpHi] === neu[at + lcpHi]) lcpHi++;
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    const p = I[mid]!;
    let k = Math.min(lcpLo, lcpHi);
    const orem = oldsize - p;
    const max = Math.min(orem, nrem);
    while (k < max && old[p + k] === neu[at + k]) k++;
    if (k === max ? orem < nrem : old[p + k]! < neu[at + k]!) {
      lo = mid;
      lcpLo = k;
    } else {
      hi = mid;
      lcpHi = k;
    }
  }
  return lcpLo > lcpHi ? { len: lcpLo, index: lo } : { len: lcpHi, index: hi };
}

test('suffix search: the same match and slot as the full binary search, at every position', () => {
  const rnd = prng(13);
  for (let t = 0; t < 40; t++) {
    const old = structured(rnd, Math.floor(rnd() * 3000), t % 5);
    const neu = t % 2 ? structured(rnd, Math.floor(rnd() * 3000), (t + 2) % 5) : Buffer.concat([old.subarray(100), old.subarray(0, 200)]);
    const I = sortedSuffixes(old);
    const s = suffixSearcher(I, old, neu);
    for (let at = 0; at < neu.length; at++) {
      const want = plainSearch(I, old, neu, at);
      assert.equal(s.search(at), want.len, `length at ${at} (case ${t})`);
      assert.equal(s.index, want.index, `slot at ${at} (case ${t})`);
    }
  }
});

test('suffix search after the suffix array is rebuilt in place for transformed bytes (no stale table)', () => {
  const rnd = prng(14);
  const old = structured(rnd, 50_000, 4);
  const neu = Buffer.from(old);
  const I = sortedSuffixes(old);
  suffixSearcher(I, old, neu).search(0); // builds the two-byte table of the plain bytes
  x86Forward(old, [{ start: 0, length: old.length }]);
  x86Forward(neu, [{ start: 0, length: neu.length }]);
  sortedSuffixes(old, I);
  const s = suffixSearcher(I, old, neu);
  for (let at = 0; at < neu.length; at += 37) {
    const want = plainSearch(I, old, neu, at);
    assert.equal(s.search(at), want.len);
    assert.equal(s.index, want.index);
  }
});

test('common prefixes: the galloping native compare agrees with a byte loop', () => {
  const rnd = prng(15);
  const a = structured(rnd, 20_000, 3);
  const b = Buffer.from(a);
  for (let i = 0; i < 40; i++) b[Math.floor(rnd() * b.length)] ^= 1;
  const m = prefixMatcher(a, new Uint8Array(b)); // a plain Uint8Array is accepted too
  for (let t = 0; t < 2000; t++) {
    const p = Math.floor(rnd() * a.length);
    const at = rnd() < 0.5 ? p : Math.floor(rnd() * b.length);
    const max = Math.min(a.length - p, b.length - at, Math.floor(rnd() * 30_000));
    let want = 0;
    while (want < max && a[p + want] === b[at + want]) want++;
    const k = Math.floor(rnd() * (want + 1));
    assert.equal(m(p, at, k, max), want);
  }
});

test('sparse streams from the control triples equal those from the dense data stream', () => {
  const rnd = prng(16);
  for (let t = 0; t < 20; t++) {
    const old = structured(rnd, 2000 + Math.floor(rnd() * 20_000), t % 5);
    const neu = Buffer.from(old);
    for (let i = 0; i < 30; i++) neu[Math.floor(rnd() * neu.length)] = Math.floor(rnd() * 256);
    const grown = Buffer.concat([neu.subarray(0, 500), structured(rnd, 700, 4), neu.subarray(500)]);
    for (const opts of [{}, TEXT_SCAN]) {
      const dense = bsdiffScan(old, grown, opts);
      const ctrl = bsdiffControl(old, grown, opts);
      assert.deepEqual(ctrl, dense.ctrl);
      const a = sparseStreams(dense.ctrl, dense.data);
      const b = sparseFromControl(ctrl, old, grown);
      assert.ok(a.runs.equals(b.runs) && a.diffs.equals(b.diffs) && a.extra.equals(b.extra), `case ${t}`);
    }
  }
  assert.throws(() => sparseFromControl([1, 1, 0], Buffer.alloc(4), Buffer.alloc(3)), /covers 2 of 3/);
});

test('scans sharing a search memo give the same control and lz streams as scans without one', async () => {
  const { SearchMemo } = await import('../src/delta/sa-search.js');
  const { lzScan } = await import('../src/delta/lz.js');
  const rnd = prng(17);
  for (let t = 0; t < 10; t++) {
    const old = structured(rnd, 5000 + Math.floor(rnd() * 30_000), t % 5);
    const neu = Buffer.concat([old.subarray(3000), structured(rnd, 2000, (t + 1) % 5), old.subarray(0, 3000)]);
    for (let i = 0; i < 50; i++) neu[Math.floor(rnd() * neu.length)] = Math.floor(rnd() * 256);
    const suffixes = sortedSuffixes(old);
    const memo = new SearchMemo(suffixes, t % 2 ? 500 : undefined); // a small limit on odd cases
    assert.deepEqual(bsdiffControl(old, neu, { ...TEXT_SCAN, suffixes, memo }), bsdiffControl(old, neu, { ...TEXT_SCAN, suffixes }));
    assert.deepEqual(bsdiffControl(old, neu, { suffixes, memo }), bsdiffControl(old, neu, { suffixes }));
    assert.deepEqual(lzScan(old, neu, { suffixes, memo }), lzScan(old, neu, { suffixes }));
    const s = suffixSearcher(suffixes, old, neu, memo);
    for (const at of [neu.length - 1, 0, 17, 5, neu.length >> 1]) { // out of order too
      const want = plainSearch(suffixes, old, neu, at);
      assert.equal(s.search(at), want.len);
      assert.equal(s.index, want.index);
    }
  }
  assert.throws(() => suffixSearcher(new Int32Array(3), Buffer.alloc(2), Buffer.alloc(2), new SearchMemo(new Int32Array(3))), /another suffix array/);
});

test('a cleared memo reused for a suffix array rebuilt in place answers as a fresh search; its limit holds', async () => {
  const { SearchMemo } = await import('../src/delta/sa-search.js');
  const { lzScan } = await import('../src/delta/lz.js');
  const rnd = prng(18);
  const old = structured(rnd, 60_000, 2);
  const neu = Buffer.concat([old.subarray(20_000), structured(rnd, 3000, 1), old.subarray(0, 20_000)]);
  for (let i = 0; i < 200; i++) neu[Math.floor(rnd() * neu.length)] = Math.floor(rnd() * 256);
  const suffixes = sortedSuffixes(old);
  const memo = new SearchMemo(suffixes);
  bsdiffControl(old, neu, { ...TEXT_SCAN, suffixes, memo });
  lzScan(old, neu, { suffixes, memo });
  assert.ok(memo.size > 20_000, `the scans recorded ${memo.size} answers`); // more than one storage chunk
  // The same trees transformed (as the x86 candidates do), the suffix array rebuilt into the same array.
  x86Forward(old, [{ start: 0, length: old.length }]);
  x86Forward(neu, [{ start: 0, length: neu.length }]);
  memo.clear();
  assert.equal(memo.size, 0);
  sortedSuffixes(old, suffixes);
  assert.deepEqual(bsdiffControl(old, neu, { suffixes, memo }), bsdiffControl(old, neu, { suffixes }));
  assert.deepEqual(lzScan(old, neu, { suffixes, memo }), lzScan(old, neu, { suffixes }));
  const small = new SearchMemo(suffixes, 1000);
  bsdiffControl(old, neu, { suffixes, memo: small });
  assert.equal(small.size, 1000);
  await memo.free();
  assert.equal(memo.size, 0);
});

test('release frees a typed array now: its buffer is detached; views of a larger buffer are refused', async () => {
  const { release } = await import('../src/delta/release.js');
  const a = new Int32Array(1 << 20).fill(7);
  await release(a);
  assert.equal(a.length, 0);
  assert.equal(a.buffer.byteLength, 0);
  const big = new Int32Array(16);
  await assert.rejects(release(big.subarray(4)), /own its whole buffer/);
  assert.equal(big.length, 16);
});
