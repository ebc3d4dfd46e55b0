// `npm ci` runs this (the `prepare` script): compile the TypeScript into dist/, saying so, since
// it takes a while on a small machine, bundle the web dashboard into dist/web and the device's
// commands into dist/device (scripts/bundle-device.mjs). npx runs `prepare` again the first time it links this
// folder (`npx patchwire ...` from the repository root), so an up-to-date dist/ is not rebuilt:
// dist/.build-stamp is newer than every source file then. `npm run build` (--force) always compiles.
import { readdirSync, statSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { bundleDashboard } from './bundle-dashboard.mjs';
import { bundleDevice } from './bundle-device.mjs';

const stamp = join('dist', '.build-stamp');

function newest(path) {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(s.mtimeMs, ...readdirSync(path).map((f) => newest(join(path, f))));
}

const sources = ['src', 'test', 'bench', 'tsconfig.json', 'package.json'].filter((p) => existsSync(p));
const force = process.argv.includes('--force');
if (!force && existsSync(stamp) && statSync(stamp).mtimeMs >= Math.max(...sources.map(newest))) process.exit(0);

if (!force) process.stderr.write('patchwire: compiling TypeScript into dist/ (once after install or a change; about 10-30 s)...\n');
// The stamp's text names this build; the device bundle carries it too, and bin/patchwire.js runs
// the bundle only when the two agree. Removed first, so a build that stops half-way is no build.
const buildId = `${new Date().toISOString()} ${process.pid}`;
rmSync(stamp, { force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write('patchwire: the TypeScript build failed (see above); dist/ is not up to date\n');
  process.exit(r.status ?? 1);
}
await bundleDashboard();
await bundleDevice(buildId);
writeFileSync(stamp, `${buildId}\n`);
if (!force) process.stderr.write('patchwire: built dist/\n');
