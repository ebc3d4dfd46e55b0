#!/usr/bin/env node
// The CLI is compiled by `npm ci` (the `prepare` script runs tsc and esbuild) into dist/.
const args = process.argv.slice(2);

// `npx patchwire serve` runs us as npm -> sh -c -> node. Stopping npm (`kill $!` after
// `npx patchwire serve &`) ends npm and its shell but not us, and we would keep the port. So a
// long-running command started by npm stops itself, as on SIGTERM, once the process that started
// it is gone (we are re-parented). Started any other way (node bin/patchwire.js, systemd), no watch.
if (process.env.npm_command === 'exec' && (args[0] === 'serve' || args[0] === 'agent')) {
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(watch);
      process.stderr.write('patchwire: the npm process that started this one is gone; stopping\n');
      process.kill(process.pid, 'SIGTERM');
    }
  }, 250);
  watch.unref();
}

// The commands that run on a device (src/cli/device-main.ts, DEVICE_COMMANDS) come from one
// bundled file made by `npm run build`: a `check` process then reads one module instead of ~190
// (bench/README.md, issue 13). The bundle must be of the same build as dist/ (it carries the
// build stamp's text): a missing or other bundle fails with what to run, never runs other code.
const DEVICE_COMMANDS = new Set(['init', 'check', 'agent', 'rollback', 'retry']);

async function deviceBundle() {
  const { existsSync, readFileSync } = await import('node:fs');
  const bundle = new URL('../dist/device/patchwire-device.mjs', import.meta.url);
  const stampFile = new URL('../dist/.build-stamp', import.meta.url);
  const rebuild = `run \`npm run build\` in ${new URL('..', import.meta.url).pathname} (it compiles dist/ and bundles the device commands)`;
  if (!existsSync(bundle)) return { problem: `the device commands' bundle dist/device/patchwire-device.mjs is missing: ${rebuild}` };
  const stamp = existsSync(stampFile) ? readFileSync(stampFile, 'utf8').trim() : undefined;
  const m = await import(bundle.href);
  if (stamp === undefined || m.DEVICE_BUILD_ID !== stamp) {
    return {
      problem: `the device commands' bundle dist/device/patchwire-device.mjs is stale: it is of build ${JSON.stringify(m.DEVICE_BUILD_ID ?? null)}, `
        + `dist/ of ${stamp === undefined ? 'no finished build (dist/.build-stamp is missing)' : `build ${JSON.stringify(stamp)}`}: ${rebuild}`,
    };
  }
  return { deviceMain: m.deviceMain };
}

let code;
if (DEVICE_COMMANDS.has(args[0])) {
  const b = await deviceBundle();
  if (b.problem) {
    process.stderr.write(`patchwire: ${b.problem}\n`);
    // As every failure under --json: one error document on stdout (docs/errors.md, PW_DEVICE_BUNDLE).
    const end = args.indexOf('--');
    if ((end === -1 ? args : args.slice(0, end)).includes('--json')) process.stdout.write(`${JSON.stringify({ error: { code: 'PW_DEVICE_BUNDLE', message: b.problem } })}\n`);
    code = 1;
  } else {
    code = await b.deviceMain(process.argv);
  }
} else {
  const { main } = await import('../dist/src/cli/main.js');
  code = await main(process.argv);
}
process.exitCode = code;
