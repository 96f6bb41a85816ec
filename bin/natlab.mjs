#!/usr/bin/env node
// Entry point of the `natlab` command: runs the TypeScript CLI through tsx so a fresh clone
// works after `npm ci` with no build step.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
process.exitCode = code;
