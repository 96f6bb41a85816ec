#!/usr/bin/env node
// Entry point of the `natlab` command: runs the TypeScript CLI through tsx so a fresh clone
// works after `npm ci` with no build step.
import { register } from 'tsx/esm/api';
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

register();
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
process.exitCode = code;
