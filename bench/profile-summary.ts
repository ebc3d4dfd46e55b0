/**
 * Self time per function and per area (package, source folder) of a .cpuprofile (`node --cpu-prof`).
 *
 * Run: node --import tsx bench/profile-summary.ts PROFILE.cpuprofile [--window FILE]
 * `--window FILE`: only the samples inside a window of the monotonic clock ({ fromUs, toUs }, µs,
 * the clock of the profile's startTime and of process.hrtime), e.g. the first-run-window.json that
 * bench/reconcile.ts --cpu-prof writes for the first reconcile.
 */
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { REPO, table } from './lib.js';

export interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; }
export interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime?: number; }

/** A window of the monotonic clock, in microseconds (the profile's startTime is on it). */
export interface ProfileWindow { fromUs: number; toUs: number }

/**
 * Self time per function and per package/area of a .cpuprofile. `skipMs`: leave out the samples of
 * the profile's first milliseconds (a server's start-up and warm-up, before the measured run);
 * `window`: only the samples taken inside it (needs the profile's startTime).
 */
export function summariseProfile(p: CpuProfile, skipMs = 0, window?: ProfileWindow): string {
  const byNode = new Map<number, ProfileNode>(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  if (window && p.startTime === undefined) throw new Error('the profile has no startTime: a window cannot be placed on it');
  let total = 0;
  let at = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    at += dt;
    if (at < skipMs * 1000) continue;
    if (window) {
      const t = p.startTime! + at;
      if (t < window.fromUs || t > window.toUs) continue;
    }
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
    total += dt;
  }
  const fnTime = new Map<string, number>();
  const areaTime = new Map<string, number>();
  for (const [id, t] of self) {
    const cf = byNode.get(id)!.callFrame;
    const file = cf.url.replace(`file://${REPO}/`, '');
    const name = `${cf.functionName || '(anonymous)'} ${file ? `${file}:${cf.lineNumber + 1}` : ''}`.trim();
    fnTime.set(name, (fnTime.get(name) ?? 0) + t);
    const area = !file ? name
      : file.startsWith('node_modules/') ? file.split('/').slice(0, file.startsWith('node_modules/@') ? 3 : 2).join('/')
      : file.startsWith('dist/src/') ? file.split('/').slice(0, 3).join('/')
      : file.startsWith('node:') ? 'node: (core)'
      : file;
    areaTime.set(area, (areaTime.get(area) ?? 0) + t);
  }
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, t]) => [`${((100 * t) / total).toFixed(1)}%`, `${(t / 1000).toFixed(0)} ms`, k]);
  const span = window ? `, inside the window of ${((window.toUs - window.fromUs) / 1e6).toFixed(1)} s` : '';
  return `top self time, functions (of ${(total / 1000).toFixed(0)} ms sampled${skipMs ? `, after the first ${(skipMs / 1000).toFixed(1)} s` : ''}${span}):\n`
    + table(['self', 'time', 'function'], top(fnTime, 25))
    + `\n\nself time by area:\n` + table(['self', 'time', 'area'], top(areaTime, 15));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const file = process.argv[2];
  if (!file || file.startsWith('--')) {
    process.stderr.write('usage: node --import tsx bench/profile-summary.ts PROFILE.cpuprofile [--window FILE]\n');
    process.exit(2);
  }
  const w = process.argv.indexOf('--window');
  const window = w >= 0 ? JSON.parse(await readFile(process.argv[w + 1]!, 'utf8')) as ProfileWindow : undefined;
  process.stdout.write(`${summariseProfile(JSON.parse(await readFile(file, 'utf8')) as CpuProfile, 0, window)}\n`);
}
