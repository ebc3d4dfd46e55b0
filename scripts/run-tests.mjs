// Runs every test/*.test.ts with node:test. Node 20's runner finds no files from a glob,
// so the files are listed here explicitly. PATCHWIRE_TEST=name1,name2 narrows the run.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
const only = process.env.PATCHWIRE_TEST?.split(',').filter(Boolean);
const files = readdirSync('test')
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => !only || only.some((o) => f.includes(o)))
  .sort()
  .map((f) => `test/${f}`);
if (files.length === 0) { console.error('no test files found'); process.exit(1); }
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
