/**
 * Delta cost bench: time, peak memory and size of `computeDelta` in its full mode (three
 * candidates, Brotli q11) and its lower-cost mode (lz-brotli only, Brotli q9) on synthetic tree
 * streams of growing size, each computation in a fresh process so its peak RSS is its own.
 *
 *   node --import tsx bench/delta-cost.ts [--sizes 4,16,32] [--low-sizes 4,16,32,64]
 *
 * The streams: 70% text lines (like source files), 30% random bytes (like compiled binaries);
 * NEW is OLD with a line changed every 64 KiB, 1% of the random blocks replaced and 256 KiB inserted.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { computeDelta } from '../src/delta/index.js';
import { run, runMain, table } from './lib.js';

const MB = 1024 * 1024;

/** Deterministic enough for a bench: the same size gives streams of the same character. */
function streams(bytes: number): { old: Buffer; neu: Buffer } {
  const parts: Buffer[] = [];
  let n = 0;
  for (let block = 0; n < bytes; block++) {
    let b: Buffer;
    if (block % 10 < 7) {
      const lines: string[] = [];
      for (let i = 0; i < 400; i++) lines.push(`export const v_${block}_${i} = ${(block * 7919 + i * 104729) % 1000003}; // module ${block} line ${i}`);
      b = Buffer.from(lines.join('\n'));
    } else b = randomBytes(32 * 1024);
    parts.push(b);
    n += b.length;
  }
  const old = Buffer.concat(parts).subarray(0, bytes);
  const neu = Buffer.from(old);
  for (let at = 1000; at < neu.length - 64; at += 64 * 1024) neu.write('/* changed in the new version */', at);
  for (let at = 0; at < neu.length - 4096; at += 100 * 32 * 1024) randomBytes(4096).copy(neu, at);
  const mid = Math.floor(neu.length / 2);
  return { old, neu: Buffer.concat([neu.subarray(0, mid), randomBytes(256 * 1024), neu.subarray(mid)]) };
}

async function one(sizeMb: number, lowCost: boolean): Promise<void> {
  const { old, neu } = streams(sizeMb * MB);
  const r = await computeDelta(old, neu, { lowCost });
  process.stdout.write(JSON.stringify({ ms: r.ms, bytes: r.delta.length, engine: r.engine, rssMb: process.resourceUsage().maxRSS / 1024, neu: neu.length }));
}

const arg = (name: string, dflt: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1]! : dflt);

runMain(async () => {
  if (process.argv.includes('--one')) return one(Number(arg('--one', '4')), process.argv.includes('--low'));
  console.log(`delta cost bench: node ${process.version}, ${availableParallelism()} cores`);
  const rows: string[][] = [];
  const jobs: Array<[number, boolean]> = [
    ...arg('--sizes', '4,16,32').split(',').map((s) => [Number(s), false] as [number, boolean]),
    ...arg('--low-sizes', '4,16,32,64').split(',').map((s) => [Number(s), true] as [number, boolean]),
  ];
  for (const [size, low] of jobs) {
    const r = await run(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--one', String(size), ...(low ? ['--low'] : [])]);
    if (r.code !== 0) throw new Error(`${size} MB ${low ? 'low-cost' : 'full'} failed: ${r.stderr}`);
    const m = JSON.parse(r.stdout) as { ms: number; bytes: number; engine: string; rssMb: number; neu: number };
    rows.push([`${size} MB`, low ? 'low-cost' : 'full', m.engine, m.bytes.toLocaleString('en'), `${(m.ms / 1000).toFixed(1)} s`, `${Math.round(m.rssMb)} MB`, `${(m.rssMb / size).toFixed(1)}x`]);
    process.stderr.write(`${rows.at(-1)!.join('  ')}\n`);
  }
  console.log(table(['old tree stream', 'mode', 'engine kept', 'delta bytes', 'time', 'peak RSS', 'RSS / size'], rows));
});
