// What the kernel oracle needs from the machine, checked up front so callers can skip (tests) or
// exit 2 (CLI) with a message saying exactly what is missing and how to get it.
import { access, constants } from 'node:fs/promises';
import { run } from './exec.ts';

export interface Prerequisite {
  /** Short name: 'root', 'ip', 'iptables', ... */
  name: string;
  ok: boolean;
  /** What was found, or what is wrong and how to fix it. */
  detail: string;
}

export interface PrerequisiteReport {
  ok: boolean;
  items: Prerequisite[];
  /** The missing items, one line each (empty when ok). */
  missing: string[];
  /** iptables backend ('nf_tables' or 'legacy'), when iptables is present. */
  iptablesBackend: string | null;
}

const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

async function findTool(name: string): Promise<string | null> {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH_PATH];
  for (const d of dirs) {
    try {
      await access(`${d}/${name}`, constants.X_OK);
      return `${d}/${name}`;
    } catch {
      // next
    }
  }
  return null;
}

/** Debian/Ubuntu package providing each tool. */
const TOOLS: ReadonlyArray<{ tool: string; pkg: string }> = [
  { tool: 'ip', pkg: 'iproute2' },
  { tool: 'iptables', pkg: 'iptables' },
  { tool: 'iptables-restore', pkg: 'iptables' },
  { tool: 'conntrack', pkg: 'conntrack' },
  { tool: 'perl', pkg: 'perl-base' },
];

export async function checkKernelPrerequisites(): Promise<PrerequisiteReport> {
  const items: Prerequisite[] = [];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  items.push({
    name: 'root',
    ok: isRoot,
    detail: isRoot ? 'running as root' : 'not root: network namespaces need root (run with sudo)',
  });
  if (process.platform !== 'linux') {
    items.push({ name: 'linux', ok: false, detail: `platform is ${process.platform}: the kernel oracle needs Linux` });
  }
  const found = new Map<string, string | null>();
  for (const { tool, pkg } of TOOLS) {
    const p = await findTool(tool);
    found.set(tool, p);
    items.push({ name: tool, ok: p !== null, detail: p ?? `'${tool}' not found: install the Debian package '${pkg}'` });
  }
  let backend: string | null = null;
  if (found.get('iptables')) {
    const r = await run('iptables', ['-V'], { allowFail: true });
    const m = /\((nf_tables|legacy)\)/.exec(r.stdout + r.stderr);
    backend = m ? m[1] : 'legacy';
  }
  let netnsOk = false;
  let netnsDetail = '/proc/self/ns/net missing: kernel without network namespaces (CONFIG_NET_NS)';
  try {
    await access('/proc/self/ns/net', constants.R_OK);
    netnsOk = true;
    netnsDetail = 'network namespaces supported';
  } catch {
    // keep detail
  }
  items.push({ name: 'netns', ok: netnsOk, detail: netnsDetail });
  let ctOk = false;
  let ctDetail = 'conntrack sysctls missing: kernel without nf_conntrack (modprobe nf_conntrack)';
  try {
    await access('/proc/sys/net/netfilter/nf_conntrack_max', constants.R_OK);
    ctOk = true;
    ctDetail = 'nf_conntrack present';
  } catch {
    // Module not loaded yet: iptables -t nat loads it on first use as root.
    if (isRoot) {
      ctOk = true;
      ctDetail = 'nf_conntrack not loaded yet (loaded on first nat rule)';
    }
  }
  items.push({ name: 'nf_conntrack', ok: ctOk, detail: ctDetail });
  const missing = items.filter((i) => !i.ok).map((i) => `${i.name}: ${i.detail}`);
  return { ok: missing.length === 0, items, missing, iptablesBackend: backend };
}

/** One line for skip messages and CLI errors. */
export function describeMissing(r: PrerequisiteReport): string {
  return r.ok ? 'all kernel-oracle prerequisites present' : `kernel oracle unavailable: ${r.missing.join('; ')}`;
}
