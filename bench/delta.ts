/**
 * Delta bench: patchwire's whole-tree delta against bsdiff, xdelta3 and zstd --patch-from on the
 * same old/new tree streams, measured in the same run.
 *
 *   node --import tsx bench/delta.ts [--only typescript|esbuild|biome|lightningcss|prettier] [--no-ultra] [--baseline DIR]
 *
 * Packages come from `npm pack NAME@VERSION` into ~/.cache/patchwire-bench (kept between runs);
 * tree streams are built with treeStream() on each `package/` folder. Needs the Debian packages
 * bsdiff, xdelta3 and zstd.
 *
 * patchwire's computeDelta runs in a fresh child process (bench/delta-compute.mjs, on the compiled
 * dist/ as `patchwire serve` runs it: run `npm run build` first), so its peak RSS (both tree streams
 * and Node itself included; the "floor" line is a child that only loads the module and the trees)
 * is its own; every tool's generation runs under /usr/bin/time for its peak RSS too.
 * `--baseline DIR` (another built checkout, e.g. `git worktree add --detach /tmp/base main` and
 * `npm run build` there) also computes each pair with that build, in turn, in the same run.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { applyDelta, treeStream } from '../src/delta/index.js';
import { fileURLToPath } from 'node:url';
import { loadAverage, makeTempDir, run, runMain, table } from './lib.js';

const CACHE = join(homedir(), '.cache', 'patchwire-bench');
const PAIRS: Array<[string, string, string]> = [
  ['typescript', '5.6.3', '5.7.2'],
  ['@esbuild/linux-x64', '0.24.1', '0.24.2'],
  ['@biomejs/cli-linux-x64', '1.9.3', '1.9.4'],
  // Issue 13: pairs the engines were not tuned on, a Rust native binary and a large JavaScript tree.
  ['lightningcss-linux-x64-gnu', '1.28.1', '1.28.2'],
  ['prettier', '3.4.1', '3.4.2'],
];

async function fetchTree(name: string, version: string): Promise<string> {
  const base = `${name.replace(/^@/, '').replace('/', '-')}-${version}`;
  const dir = join(CACHE, base);
  if (!existsSync(join(dir, 'package'))) {
    await mkdir(dir, { recursive: true });
    const p = await run('npm', ['pack', `${name}@${version}`, '--silent', '--pack-destination', CACHE]);
    if (p.code !== 0) throw new Error(`npm pack ${name}@${version} failed: ${p.stderr}`);
    const t = await run('tar', ['-xzf', join(CACHE, p.stdout.trim().split('\n').pop()!), '-C', dir]);
    if (t.code !== 0) throw new Error(`tar failed: ${t.stderr}`);
  }
  return join(dir, 'package');
}

async function must(cmd: string, args: string[]): Promise<number> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.ms;
}

/** Runs a generation under GNU time: wall ms and peak RSS in MB. */
async function measured(cmd: string, args: string[]): Promise<{ ms: number; rssMb: number }> {
  const r = await run('/usr/bin/time', ['-f', 'PEAK_KB %M', cmd, ...args]);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  const kb = /PEAK_KB (\d+)/.exec(r.stderr);
  return { ms: r.ms, rssMb: kb ? Number(kb[1]) / 1024 : NaN };
}

interface Row {
  tool: string;
  bytes: number;
  genMs: number;
  applyMs: number;
  rssMb: number;
}

async function tool(tmp: string, name: string, oldF: string, newF: string, enc: (out: string) => [string, string[]], dec: (patch: string, out: string) => [string, string[]]): Promise<Row | undefined> {
  const out = join(tmp, `${name.replace(/[^a-z0-9]+/gi, '_')}.patch`);
  const res = join(tmp, 'result');
  try {
    const gen = await measured(...enc(out));
    const applyMs = await must(...dec(out, res));
    if (!(await readFile(res)).equals(await readFile(newF))) throw new Error(`${name} did not reproduce new`);
    return { tool: name, bytes: (await stat(out)).size, genMs: gen.ms, applyMs, rssMb: gen.rssMb };
  } catch (err) {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return undefined;
  }
}

const REPO = fileURLToPath(new URL('..', import.meta.url));
const CHILD = fileURLToPath(new URL('delta-compute.mjs', import.meta.url));

/** computeDelta of the build in `repo` in a fresh process (see delta-compute.mjs). */
async function computeIn(repo: string, oldF: string, newF: string, out: string): Promise<{ engine: string; ms: number; rssMb: number }> {
  const child = await run(process.execPath, [CHILD, repo, oldF, newF, out]);
  if (child.code !== 0) throw new Error(`computeDelta (${repo}) failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as { engine: string; ms: number; rssMb: number };
}

runMain(async () => {
  const args = process.argv.slice(2);
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  const baseline = args.includes('--baseline') ? args[args.indexOf('--baseline') + 1] : undefined;
  if (args.includes('--baseline') && !baseline) throw new Error('--baseline needs a folder: a built checkout to compare with');
  const ultra = !args.includes('--no-ultra');
  const versions = await Promise.all(['bsdiff', 'xdelta3', 'zstd'].map(async (c) => {
    const r = await run('dpkg-query', ['-W', '-f', '${Version}', c]);
    return `${c} ${r.code === 0 ? r.stdout : '(not installed)'}`;
  }));
  console.log(`delta bench: node ${process.version}, ${availableParallelism()} cores, ${versions.join(", ")}; load average ${loadAverage()}`);
  await mkdir(CACHE, { recursive: true });
  const tmp = await makeTempDir('patchwire-bench-delta-');
  const summary: string[][] = [];
  for (const [name, a, b] of PAIRS.filter((p) => !only || p[0].includes(only))) {
    const old = await treeStream(await fetchTree(name, a));
    const neu = await treeStream(await fetchTree(name, b));
    const oldF = join(tmp, 'old.tar');
    const newF = join(tmp, 'new.tar');
    await writeFile(oldF, old);
    await writeFile(newF, neu);
    console.log(`\n${name} ${a} -> ${b}: tree streams ${old.length} -> ${neu.length} bytes`);

    const rows: Row[] = [];
    const floor = await run(process.execPath, [CHILD, REPO, oldF, newF, '--floor']);
    if (floor.code !== 0) throw new Error(`the floor child failed: ${floor.stderr}`);
    console.log(`process floor (node + the delta module + both tree streams, nothing computed): ${Math.round((JSON.parse(floor.stdout) as { rssMb: number }).rssMb)} MB peak RSS`);
    let base: { engine: string; ms: number; rssMb: number; bytes: number } | undefined;
    if (baseline) {
      const baseF = join(tmp, 'baseline.delta');
      const b = await computeIn(baseline, oldF, newF, baseF);
      const bd = await readFile(baseF);
      if (!applyDelta(old, bd, { maxOutput: neu.length }).equals(neu)) throw new Error('the baseline delta did not reproduce new');
      base = { ...b, bytes: bd.length };
    }
    const deltaF = join(tmp, 'patchwire.delta');
    const { engine, ms: genMs, rssMb } = await computeIn(REPO, oldF, newF, deltaF);
    const delta = await readFile(deltaF);
    if (base) rows.push({ tool: `patchwire baseline (${base.engine})`, bytes: base.bytes, genMs: base.ms, applyMs: NaN, rssMb: base.rssMb });
    const applyTimes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const out = applyDelta(old, delta, { maxOutput: neu.length });
      applyTimes.push(performance.now() - t0);
      if (!out.equals(neu)) throw new Error('patchwire delta did not reproduce new');
    }
    applyTimes.sort((x, y) => x - y);
    const applyMs = applyTimes[2]!;
    rows.push({ tool: `patchwire (${engine})`, bytes: delta.length, genMs, applyMs, rssMb });
    if (base && delta.length > base.bytes) console.log(`NOTE: this build's delta is LARGER than the baseline's (${delta.length} > ${base.bytes})`);

    const others = [
      await tool(tmp, 'bsdiff', oldF, newF, (o) => ['bsdiff', [oldF, newF, o]], (p, r) => ['bspatch', [oldF, r, p]]),
      await tool(tmp, 'xdelta3 -9', oldF, newF, (o) => ['xdelta3', ['-e', '-9', '-f', '-s', oldF, newF, o]], (p, r) => ['xdelta3', ['-d', '-f', '-s', oldF, p, r]]),
      await tool(tmp, 'zstd -19 --long=31', oldF, newF, (o) => ['zstd', ['-q', '-f', '-19', '--long=31', `--patch-from=${oldF}`, newF, '-o', o]], (p, r) => ['zstd', ['-q', '-f', '-d', '--long=31', `--patch-from=${oldF}`, p, '-o', r]]),
      ultra ? await tool(tmp, 'zstd --ultra -22 --long=31', oldF, newF, (o) => ['zstd', ['-q', '-f', '--ultra', '-22', '--long=31', `--patch-from=${oldF}`, newF, '-o', o]], (p, r) => ['zstd', ['-q', '-f', '-d', '--long=31', `--patch-from=${oldF}`, p, '-o', r]]) : undefined,
    ].filter((r): r is Row => r !== undefined);
    rows.push(...others);
    const best = Math.min(...others.map((r) => r.bytes));
    console.log(table(
      ['tool', 'delta bytes', '% of new', 'vs best tool', 'generate', 'peak RSS', 'apply'],
      rows.map((r) => [r.tool, r.bytes.toLocaleString('en-US'), `${((100 * r.bytes) / neu.length).toFixed(3)}%`, `${(r.bytes / best).toFixed(3)}x`, `${(r.genMs / 1000).toFixed(1)} s`, `${Math.round(r.rssMb)} MB`, Number.isNaN(r.applyMs) ? '-' : `${r.applyMs.toFixed(0)} ms`]),
    ));
    const bestTool = others.find((r) => r.bytes === best)!;
    const mbps = neu.length / 1e6 / (applyMs / 1000);
    console.log(`patchwire apply: median of 5 ${applyMs.toFixed(0)} ms (${mbps.toFixed(0)} MB/s of output, includes sha256 of old and new)`);
    const bs = others.find((r) => r.tool === 'bsdiff');
    const z22 = others.find((r) => r.tool.startsWith('zstd --ultra'));
    const rssX = rssMb / (neu.length / 1024 ** 2);
    summary.push([
      `${name} ${a}->${b}`, delta.length.toLocaleString('en-US'), `${bestTool.tool} ${best.toLocaleString('en-US')}`, `${(delta.length / best).toFixed(3)}x`, delta.length <= best ? 'yes' : 'NO',
      bs ? `${(delta.length / bs.bytes).toFixed(3)}x` : '-',
      `${(genMs / 1000).toFixed(1)} s`, z22 ? `${(genMs / z22.genMs).toFixed(2)}x` : '-', `${Math.round(rssMb)} MB`, `${rssX.toFixed(1)}x`, `${applyMs.toFixed(0)} ms`,
      ...(base ? [`${base.bytes.toLocaleString('en-US')}`, `${(base.ms / 1000).toFixed(1)} s`, z22 ? `${(base.ms / z22.genMs).toFixed(2)}x` : '-', `${Math.round(base.rssMb)} MB`] : []),
    ]);
  }
  console.log(`\nsummary (issue 13: size <= 1.0x the best tool on every pair; esbuild <= 0.8x bsdiff; generation <= zstd --ultra -22; peak RSS <= 12x NEW); load average ${loadAverage()}`);
  console.log(table(['pair', 'patchwire', 'best tool', 'ratio', '<= 1.0x', 'vs bsdiff', 'generate', 'vs zstd -22', 'peak RSS', 'RSS / NEW', 'apply',
    ...(baseline ? ['baseline bytes', 'baseline generate', 'vs zstd -22', 'baseline RSS'] : [])], summary));
});
