// Bundles the web dashboard (src/dashboard: Preact + htm + uPlot) into dist/web with esbuild, so
// `patchwire serve` serves it from the package: nothing is fetched at run time. Called by
// prepare.mjs after the TypeScript build; `node scripts/bundle-dashboard.mjs` alone redoes it.
import { mkdirSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

export async function bundleDashboard() {
  const out = join('dist', 'web');
  mkdirSync(join(out, 'assets'), { recursive: true });
  await build({
    entryPoints: { app: 'src/dashboard/main.ts' },
    outdir: join(out, 'assets'),
    bundle: true,
    format: 'esm',
    target: 'es2020',
    minify: true,
    legalComments: 'eof',
    logLevel: 'warning',
  });
  await build({ entryPoints: { app: 'src/dashboard/style.css' }, outdir: join(out, 'assets'), bundle: true, minify: true, logLevel: 'warning' });
  copyFileSync('src/dashboard/index.html', join(out, 'index.html'));
}

if (import.meta.url === `file://${process.argv[1]}`) await bundleDashboard();
