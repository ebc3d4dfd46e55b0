#!/usr/bin/env node
// The CLI is compiled by `npm ci` (the `prepare` script runs tsc) into dist/.
// `patchwire agent --dir D` skips the full CLI: the long-running agent stays small.
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

let code;
if (args[0] === 'agent') {
  const { agentFastPath } = await import('../dist/src/cli/agent-fast-path.js');
  code = await agentFastPath(args.slice(1));
}
if (code === undefined) {
  const { main } = await import('../dist/src/cli/main.js');
  code = await main(process.argv);
}
process.exitCode = code;
