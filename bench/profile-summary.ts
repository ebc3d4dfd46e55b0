/** Self time per function and per area (package, source folder) of a .cpuprofile (`node --cpu-prof`). */
import { REPO, table } from './lib.js';

export interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; }
export interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; }

/**
 * Self time per function and per package/area of a .cpuprofile. `skipMs`: leave out the samples of
 * the profile's first milliseconds (a server's start-up and warm-up, before the measured run).
 */
export function summariseProfile(p: CpuProfile, skipMs = 0): string {
  const byNode = new Map<number, ProfileNode>(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  let at = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    at += dt;
    if (at < skipMs * 1000) continue;
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
  return `top self time, functions (of ${(total / 1000).toFixed(0)} ms sampled${skipMs ? `, after the first ${(skipMs / 1000).toFixed(1)} s` : ''}):\n`
    + table(['self', 'time', 'function'], top(fnTime, 25))
    + `\n\nself time by area:\n` + table(['self', 'time', 'area'], top(areaTime, 15));
}
