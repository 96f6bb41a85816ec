// `npx natlab ...` runs npm exec -> sh -c natlab -> node (this process). A SIGTERM to npm kills
// npm and its shell but not us; a SIGKILL to npm leaves the shell waiting on us. Either way the
// run would go on to completion with nobody to report to. When npm launched us (npm sets
// npm_command in our environment), we remember the chain of ancestors up to the npm process and
// check it twice a second: if any of them is gone or was re-parented, the launcher is gone and we
// end ourselves with SIGTERM (so the kernel engine's cleanup handlers still remove its namespaces).
// Outside npm nothing is watched: `nohup natlab ... &` keeps its usual meaning. Linux only (/proc);
// elsewhere only the direct parent is watched.
import { readFileSync } from 'node:fs';
import { Worker, isMainThread, workerData } from 'node:worker_threads';

/** Ancestors checked at most (npm exec -> sh -c -> node is two). */
const MAX_CHAIN = 4;
export const WATCH_INTERVAL_MS = 500;

/** [pid, ppid, command name] of a process from /proc, or null when it is gone. */
function procStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ...: comm may hold spaces and parentheses; it ends at the last ')'.
    const close = s.lastIndexOf(')');
    const comm = s.slice(s.indexOf('(') + 1, close);
    const ppid = Number(s.slice(close + 2).split(' ')[1]);
    return { pid, ppid, comm };
  } catch {
    return null;
  }
}

function isNpm(p) {
  if (/^(npm|npx)/.test(p.comm)) return true;
  try {
    return /(^|\/)(npm|npx)(-cli\.js)?(\0|$)|npm-cli\.js|npx-cli\.js/.test(
      readFileSync(`/proc/${p.pid}/cmdline`, 'utf8'),
    );
  } catch {
    return false;
  }
}

/** The ancestors to watch: parent, grandparent, ... up to and including the npm process. */
export function launcherChain(pid = process.pid) {
  const chain = [];
  let cur = procStat(pid);
  for (let i = 0; cur && i < MAX_CHAIN; i++) {
    const parent = procStat(cur.ppid);
    if (!parent || parent.pid <= 1) break;
    chain.push(parent);
    if (isNpm(parent)) return chain;
    cur = parent;
  }
  return null; // no npm above us (or no /proc): watch the direct parent only
}

export function watchLauncher(env = process.env) {
  if (!env.npm_command && !env.npm_lifecycle_event) return null;
  const chain = launcherChain();
  // The check runs on its own thread: a command that keeps the main thread busy (an inline fuzz
  // campaign) would never let a timer there fire.
  const w = new Worker(new URL(import.meta.url), { workerData: { chain, ppid0: process.ppid, pid: process.pid } });
  w.unref();
  return w;
}

function watchLoop({ chain, ppid0, pid }) {
  const gone = () => {
    const me = procStat(pid);
    if (me && me.ppid !== ppid0) return true;
    if (!chain) return false;
    for (const a of chain) {
      const now = procStat(a.pid);
      if (!now || now.ppid !== a.ppid) return true;
    }
    return false;
  };
  const timer = setInterval(() => {
    if (!gone()) return;
    clearInterval(timer);
    process.stderr.write('natlab: the npm launcher is gone (killed?): stopping\n');
    process.kill(pid, 'SIGTERM');
  }, WATCH_INTERVAL_MS);
}

if (!isMainThread && workerData && workerData.pid) watchLoop(workerData);
