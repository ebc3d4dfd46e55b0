#!/usr/bin/env node
// The CLI is compiled by `npm ci` (the `prepare` script runs tsc) into dist/.
// `patchwire agent --dir D` skips the full CLI: the long-running agent stays small.
const args = process.argv.slice(2);
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
