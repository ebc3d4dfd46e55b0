/**
 * Where computeDelta's time goes, step by step, on one bench pair (in-process; for profiling):
 *
 *   node --import tsx bench/delta-steps.ts OLD.tar NEW.tar
 *
 * Prints each step's wall time and the process's RSS after it, and each candidate's raw and
 * Brotli sizes at qualities 5, 9 and 11 (so a ranking rule can be checked against the real winner).
 */
import { readFile } from 'node:fs/promises';
import { TEXT_SCAN, bsdiffControl, brotliMax, encodeControl, sortedSuffixes, sparseFromControl } from '../src/delta/bsdiff.js';
import { lzScan } from '../src/delta/lz.js';
import { x86Executables } from '../src/delta/exe-segments.js';
import { encodeSegments } from '../src/delta/segments.js';
import { x86Forward, x86Inverse } from '../src/delta/x86.js';
import { SearchMemo } from '../src/delta/sa-search.js';
import { loadAverage, runMain } from './lib.js';

const mb = (n: number) => (n / 1024 ** 2).toFixed(0);
let t = performance.now();
function step(name: string): void {
  const now = performance.now();
  console.log(`${name.padEnd(28)} ${((now - t) / 1000).toFixed(2).padStart(7)} s  rss ${mb(process.memoryUsage().rss)} MB  max ${mb(process.resourceUsage().maxRSS * 1024)} MB`);
  t = performance.now();
}

runMain(async () => {
  const [oldF, newF] = process.argv.slice(2);
  console.log(`load average ${loadAverage()}`);
  const old = await readFile(oldF!);
  const neu = await readFile(newF!);
  step('read');
  const cands: Array<[string, Buffer[]]> = [];
  const segOld = x86Executables(old);
  const segNew = x86Executables(neu);
  let suffixes: Int32Array | undefined;
  const run = (prefix: string, extra: Buffer[]) => {
    const I = suffixes = sortedSuffixes(old, suffixes);
    step(`${prefix}suffix array`);
    const memo = new SearchMemo(I); // as computeDelta: the scans share their search answers
    for (const [name, opts] of [['sparse-text', TEXT_SCAN], ['sparse', {}]] as const) {
      if (prefix && name === 'sparse-text') continue;
      const ctrl = bsdiffControl(old, neu, { ...opts, suffixes: I, memo });
      const s = sparseFromControl(ctrl, old, neu);
      cands.push([`${prefix}${name}`, [encodeControl(ctrl), s.runs, s.diffs, s.extra, ...extra]]);
      step(`${prefix}${name} scan`);
    }
    const l = lzScan(old, neu, { suffixes: I, memo });
    cands.push([`${prefix}lz`, [l.literals, l.litLens, l.matchLens, l.codes, l.offsets, ...extra]]);
    step(`${prefix}lz scan`);
  };
  run('', []);
  if (segOld.length || segNew.length) {
    x86Forward(old, segOld);
    x86Forward(neu, segNew);
    step('x86 forward');
    run('x86-', [encodeSegments(segOld, segNew)]);
    x86Inverse(old, segOld);
    x86Inverse(neu, segNew);
  }
  for (const [name, streams] of cands) {
    const raw = streams.map((b) => b.length);
    const sizes: string[] = [];
    for (const q of [5, 9, 11]) {
      const t0 = performance.now();
      let n = 0;
      for (const b of streams) n += (await brotliMax(b, q)).length;
      sizes.push(`q${q} ${n} (${((performance.now() - t0) / 1000).toFixed(2)} s)`);
    }
    console.log(`${name.padEnd(14)} raw ${raw.join('+')}  ${sizes.join('  ')}`);
  }
  step('brotli (all, serial)');
  console.log(`load average ${loadAverage()}`);
});
