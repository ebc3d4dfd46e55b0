/**
 * Delta apply cost (issue 13): CPU time of `applyDelta` for the x86p-sparse-brotli delta of each
 * pair next to the engine it replaced (esbuild: x86-sparse-brotli, lightningcss: sparse-brotli),
 * this tree and a baseline build alternating in one process, median of N.
 *
 *   node --import tsx bench/delta-apply.ts [--runs 9] [--baseline DIR]
 *
 * The pairs' packages are the ones bench/delta.ts fetches into ~/.cache/patchwire-bench (run it
 * once with `--only esbuild` and `--only lightningcss`). The deltas are made once with this tree's
 * `deltaWith`; `--baseline DIR` (a built checkout: `DIR/dist/src/delta/patch.js`) applies the
 * same bytes; every result is compared with NEW.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { applyDelta, deltaWith, treeStream } from '../src/delta/index.js';
import type { EngineName } from '../src/delta/format.js';
import { loadAverage, runMain, table } from './lib.js';

const CACHE = join(homedir(), '.cache', 'patchwire-bench');
const PAIRS: Array<[string, string, string, EngineName]> = [
  ['esbuild-linux-x64', '0.24.1', '0.24.2', 'x86-sparse-brotli'],
  ['lightningcss-linux-x64-gnu', '1.28.1', '1.28.2', 'sparse-brotli'],
];

type Apply = typeof applyDelta;
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1]!;

runMain(async () => {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const runs = Number(arg('--runs') ?? 9);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  const baseDir = arg('--baseline');
  const builds: Array<[string, Apply]> = [['this', applyDelta]];
  if (baseDir) builds.unshift(['baseline', ((await import(join(baseDir, 'dist', 'src', 'delta', 'patch.js'))) as { applyDelta: Apply }).applyDelta]);
  console.log(`load average ${loadAverage()}`);
  const rows: string[][] = [];
  for (const [name, a, b, before] of PAIRS) {
    const dir = (v: string) => join(CACHE, `${name}-${v}`, 'package');
    if (!existsSync(dir(a)) || !existsSync(dir(b))) throw new Error(`${dir(a)} or ${dir(b)} missing: run bench/delta.ts --only ${name.split('-')[0]} first`);
    const old = await treeStream(dir(a));
    const neu = await treeStream(dir(b));
    const deltas: Array<[EngineName, Buffer]> = [];
    for (const e of [before, 'x86p-sparse-brotli'] as const) deltas.push([e, await deltaWith(e, old, neu)]);
    const times = new Map<string, number[]>();
    for (let r = 0; r < runs; r++) {
      for (const [build, apply] of builds) {
        for (const [engine, delta] of deltas) {
          const t = cpuMs();
          const out = apply(old, delta, { maxOutput: neu.length });
          const ms = cpuMs() - t;
          if (!out.equals(neu)) throw new Error(`${build} ${engine} did not reproduce NEW`);
          const key = `${build}\t${engine}\t${delta.length}`;
          times.set(key, [...(times.get(key) ?? []), ms]);
        }
      }
    }
    for (const [key, ms] of times) {
      const [build, engine, bytes] = key.split('\t') as [string, string, string];
      rows.push([`${name} ${a} -> ${b}`, build, engine, Number(bytes).toLocaleString('en-US'), `${median(ms).toFixed(0)} ms`, `${Math.min(...ms).toFixed(0)} ms`]);
    }
  }
  console.log(table(['pair', 'build', 'engine', 'delta bytes', `apply CPU (median of ${runs})`, 'min'], rows));
  console.log(`load average ${loadAverage()}`);
});
