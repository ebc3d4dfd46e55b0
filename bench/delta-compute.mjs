// The child of bench/delta.ts: computes one delta with the compiled code of a build (what
// `patchwire serve` runs in its delta worker: dist/, no TypeScript loader in the process), writes
// it to OUT and prints its time, engine and the process's peak RSS.
//
//   node bench/delta-compute.mjs REPO OLD NEW OUT     (REPO: a built checkout, e.g. this one)
//   node bench/delta-compute.mjs REPO OLD NEW --floor (loads the module and both trees only)
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [repo, oldF, newF, outF] = process.argv.slice(2);
// compute.js is what the server's delta worker imports (builds before it had only index.js).
const dir = join(repo ?? '', 'dist', 'src', 'delta');
const entry = existsSync(join(dir, 'compute.js')) ? join(dir, 'compute.js') : join(dir, 'index.js');
if (!repo || !oldF || !newF || !outF) {
  process.stderr.write('usage: node bench/delta-compute.mjs REPO OLD NEW OUT|--floor\n');
  process.exit(2);
}
if (!existsSync(entry)) {
  process.stderr.write(`${entry} is missing: run npm run build in ${repo} first\n`);
  process.exit(2);
}
const { computeDelta } = await import(pathToFileURL(entry).href);
const old = await readFile(oldF);
const neu = await readFile(newF);
if (outF === '--floor') {
  process.stdout.write(JSON.stringify({ rssMb: process.resourceUsage().maxRSS / 1024 }));
} else {
  const r = await computeDelta(old, neu);
  await writeFile(outF, r.delta);
  process.stdout.write(JSON.stringify({ ms: r.ms, engine: r.engine, rssMb: process.resourceUsage().maxRSS / 1024 }));
}
