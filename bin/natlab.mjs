#!/usr/bin/env node
// Entry point of the `natlab` command: runs the TypeScript CLI through tsx so a fresh clone
// works after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

// `natlab ... | head`: a closed pipe ends the command quietly, as it does for other Unix tools.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e && e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

register();
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
process.exitCode = code;
