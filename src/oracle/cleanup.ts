// Safety net: whatever a run creates is removed on close(), on error, on SIGINT/SIGTERM/SIGHUP and
// at process exit; `natlab kernel --cleanup` removes leftovers of crashed runs. Only namespaces
// matching NETNS_RE are ever touched.
import { run, runSync } from './exec.ts';
import { NETNS_RE, netnsOwnerPid } from './names.ts';

interface Live {
  /** Namespaces to delete. */
  netns: string[];
  /** Child processes (agents) to kill first: a process inside a namespace keeps it alive. */
  kill: () => void;
}

const live = new Set<Live>();
let installed = false;

function cleanupAllSync(): void {
  for (const l of live) {
    try {
      l.kill();
    } catch {
      // already gone
    }
    deleteNetnsSync(l.netns);
  }
  live.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  cleanupAllSync();
  // Re-raise with the default action so the exit status says which signal ended us.
  process.removeListener(sig, onSignal);
  process.kill(process.pid, sig);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', cleanupAllSync);
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);
}

export function registerLive(l: Live): () => void {
  install();
  live.add(l);
  return () => {
    live.delete(l);
  };
}

function batchDel(names: readonly string[]): string {
  return names.map((n) => `netns del ${n}\n`).join('');
}

export function deleteNetnsSync(names: readonly string[]): void {
  const ours = names.filter((n) => NETNS_RE.test(n));
  if (ours.length === 0) return;
  // -force: keep going past a namespace that is already gone.
  runSync('ip', ['-force', '-batch', '-'], batchDel(ours));
}

export async function deleteNetns(names: readonly string[]): Promise<void> {
  const ours = names.filter((n) => NETNS_RE.test(n));
  if (ours.length === 0) return;
  await run('ip', ['-force', '-batch', '-'], { input: batchDel(ours), allowFail: true });
}

/** Namespaces natlab created (this or earlier runs) that still exist. */
export async function listNatlabNetns(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list'], { allowFail: true });
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((n) => n && NETNS_RE.test(n));
}

/** Finds processes still running inside natlab namespaces (`ip netns pids`) and kills them. */
async function killNetnsPids(name: string): Promise<number> {
  const r = await run('ip', ['netns', 'pids', name], { allowFail: true });
  let n = 0;
  for (const t of r.stdout.split(/\s+/)) {
    const pid = Number(t);
    if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
      try {
        process.kill(pid, 'SIGKILL');
        n++;
      } catch {
        // exited meanwhile
      }
    }
  }
  return n;
}

/** Is the process that created this namespace still running (so the run is not a leftover)? */
export function ownerAlive(name: string): boolean {
  const pid = netnsOwnerPid(name);
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes leftovers of crashed runs: natlab namespaces whose creating process is gone (with
 * `all`, every natlab namespace not owned by a live engine of this process). Processes still
 * inside are killed first. Returns the names removed.
 */
export async function cleanupLeftovers(all = false): Promise<string[]> {
  const ownedNow = new Set<string>();
  for (const l of live) for (const n of l.netns) ownedNow.add(n);
  const names = (await listNatlabNetns()).filter((n) => !ownedNow.has(n) && (all || !ownerAlive(n)));
  for (const n of names) await killNetnsPids(n);
  await deleteNetns(names);
  const still = new Set(await listNatlabNetns());
  return names.filter((n) => !still.has(n));
}
