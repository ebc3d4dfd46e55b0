#!/usr/bin/env node
// The CLI is compiled by `npm ci` (the `prepare` script runs tsc) into dist/.
import { main } from '../dist/src/cli/main.js';
main(process.argv).then((code) => { process.exitCode = code; });
