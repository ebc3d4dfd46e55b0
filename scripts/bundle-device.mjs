// Bundles the device's command path (src/cli/device-main.ts: init, check, agent, rollback, retry)
// into one file, dist/device/patchwire-device.mjs, with esbuild: the agent's code, tuf-js,
// @tufjs/models, semver and commander in one module, so a `patchwire check` process reads and
// links one file instead of ~190 (bench/README.md, issue 13). Called by prepare.mjs after the
// TypeScript build; `node scripts/bundle-device.mjs` alone redoes it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

export const DEVICE_BUNDLE = join('dist', 'device', 'patchwire-device.mjs');

/** Writes the bundle; `buildId` (the build stamp's text) is built in, so bin/patchwire.js can tell a bundle of another build. */
export async function bundleDevice(buildId) {
  mkdirSync(join('dist', 'device'), { recursive: true });
  const result = await build({
    entryPoints: ['src/cli/device-main.ts'],
    outfile: DEVICE_BUNDLE,
    bundle: true,
    platform: 'node',
    format: 'esm',
    // The oldest Node we support (package.json engines); the bundle is run on 20, 22 and 24.
    target: 'node20',
    // The CommonJS packages (tuf-js, commander, ...) require Node's built-ins; in an ES module
    // esbuild's require shim cannot, so the bundle gets a real `require`.
    banner: { js: "import { createRequire as __pwCreateRequire } from 'node:module';\nconst require = __pwCreateRequire(import.meta.url);" },
    define: { PATCHWIRE_DEVICE_BUILD_ID: JSON.stringify(buildId) },
    // Error classes keep their names (the CLI and tuf-js tell errors apart by `name` and instanceof alike).
    keepNames: true,
    // A third of the bytes to read and compile at every start (~270 KB instead of ~570 KB); names
    // stay (keepNames), so a PATCHWIRE_DEBUG stack still names its functions, and
    // `node --enable-source-maps` maps it to src/ through the .map file beside the bundle.
    minify: true,
    sourcemap: 'linked',
    legalComments: 'eof',
    logLevel: 'warning',
    metafile: true,
  });
  // Which files went in (test/device-bundle.test.ts reads it: no server package may).
  writeFileSync(join('dist', 'device', 'patchwire-device.meta.json'), JSON.stringify(result.metafile));
}

if (import.meta.url === `file://${process.argv[1]}`) await bundleDevice(`manual ${new Date().toISOString()}`);
