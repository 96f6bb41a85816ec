#!/usr/bin/env node
// Entry point of the `natlab` command: runs the TypeScript CLI with no build step after `npm ci`
// (bundled on first use and cached: cli-bundle.mjs; through tsx as the fallback).
import { bundledMain } from './cli-bundle.mjs';
import { watchLauncher } from './launcher-watch.mjs';

// `natlab ... | head`: a closed pipe ends the command quietly, as it does for other Unix tools.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e && e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

// Under `npx natlab` / `npm run`, npm starts us through `sh -c` and does not pass a SIGTERM or
// SIGKILL it receives on to us: end this run when the npm launcher goes away.
watchLauncher();

// The CLI's modules bundled into one file (cli-bundle.mjs: no tsx at start-up); else through tsx.
let main = await bundledMain();
if (main === null) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
const code = await main(process.argv.slice(2));
process.exitCode = code;
