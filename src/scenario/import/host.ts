// A NAT instance's own configuration → what the scenario holds for it: the nat table as
// iptables-save text, sysctls, conntrack settings. Reads full `iptables-save` output (nat kept;
// filter/mangle/raw reported: the scenario has no place for them yet), `nft list ruleset` text
// and `nft -j list ruleset` JSON (the subset NAT boxes use: masquerade, snat, dnat, accept,
// return with address/interface/protocol/port matches; converted to iptables-save rules), and
// sysctl files (sysctl.conf / sysctl.d / `sysctl -a` lines). Anything not expressible is
// reported as Skipped with the reason. Cold path.

import { InputError } from '../../spec/errors.ts';
import { TIMEOUT_SYSCTLS, type ConntrackTimeouts } from '../../spec/timeouts.ts';
import { NAT_CHAINS, type NatChainName } from '../../spec/scenario.ts';
import { parseNatTable, tokenize } from '../iptables.ts';
import { parseFilterTable } from '../iptables-filter.ts';
import { parseMangleTable } from '../iptables-mangle.ts';
import { ErrorList } from '../error-list.ts';
import type { J } from './json-reader.ts';
import type { Skipped } from './inventory.ts';

/** The instance's interface in every natlab scenario (one ENI per instance). */
export const SCENARIO_IFACE = 'eth0';
/** Names Linux gives the primary ENI on EC2 (Xen: eth0; Nitro: ens5, enX0, ...). */
const PRIMARY_IFACE_RE = /^(eth0|ens\d+|enX\d+|enp\d+s\d+|eno\d+)$/;

export interface HostSysctls {
  ipForward?: boolean;
  sendRedirectsAll?: boolean;
  /** conf.<the instance's interface>.send_redirects */
  sendRedirectsEth0?: boolean;
  /** net.ipv4.icmp_ratelimit / icmp_ratemask / icmp_msgs_per_sec / icmp_msgs_burst, by key (the scenario's loader checks the ranges). */
  icmp?: Record<string, number>;
}

/** The ICMP rate-limit sysctls carried over as they are (docs/semantics.md §6). */
const ICMP_SYSCTL_KEYS = new Set([
  'net.ipv4.icmp_ratelimit',
  'net.ipv4.icmp_ratemask',
  'net.ipv4.icmp_msgs_per_sec',
  'net.ipv4.icmp_msgs_burst',
]);

export interface HostConntrack {
  max?: number;
  tcpLoose?: boolean;
  checksum?: boolean;
  tcpIgnoreInvalidRst?: boolean;
  tcpBeLiberal?: boolean;
  tcpMaxRetrans?: number;
  timeouts: Partial<ConntrackTimeouts>;
}

/** One rule of a nat chain as iptables-save tokens (after `-A CHAIN`), with where it came from. */
interface NatLine {
  chain: NatChainName;
  toks: string[];
  source: string;
}

/** A line of the `*filter` / `*mangle` table: a chain declaration or a rule's tokens (after `-A`). */
export type TableLine = { chain: string; policy: string; source: string } | { toks: string[]; source: string };

/** Tables the importer carries into the instance's `iptables` (the scenario parser decides what it holds). */
export const CARRIED_TABLES = ['filter', 'mangle'] as const;
export type CarriedTable = (typeof CARRIED_TABLES)[number];

export interface HostConfig {
  files: string[];
  /** `*filter` / `*mangle` sections of an iptables-save file, line by line. */
  tables: Partial<Record<CarriedTable, TableLine[]>>;
  /** nat rules gathered from iptables-save or nft (null: no nat table seen). */
  natLines: NatLine[] | null;
  natFrom: string | null;
  /** sysctl key → value with file, in file order (later wins); keys normalised to dots. */
  sysctlLines: Array<{ key: string; value: string; source: string }>;
  skipped: Skipped[];
  notes: string[];
}

/** Adds `b`'s files into `a` (both describe one instance). */
export function mergeHostConfig(a: HostConfig, b: HostConfig): void {
  if (a.natLines !== null && b.natLines !== null)
    throw new InputError(
      `${b.natFrom}: a second nat rule set for the same instance (already read ${a.natFrom}); give one of iptables-save or nft`,
      b.natFrom ?? '',
      '',
    );
  a.files.push(...b.files);
  for (const t of CARRIED_TABLES) if (b.tables[t]) a.tables[t] = b.tables[t];
  if (b.natLines !== null) {
    a.natLines = b.natLines;
    a.natFrom = b.natFrom;
  }
  a.sysctlLines.push(...b.sysctlLines);
  a.skipped.push(...b.skipped);
  a.notes.push(...b.notes);
}

export function emptyHostConfig(): HostConfig {
  return { files: [], tables: {}, natLines: null, natFrom: null, sysctlLines: [], skipped: [], notes: [] };
}

// --- detection ------------------------------------------------------------------------------------

export type HostFileKind = 'iptables-save' | 'nft' | 'nft-json' | 'sysctl';

/** What kind of host file `text` is, or null. */
export function detectHostFile(text: string, json: J | null): HostFileKind | null {
  if (json) return json.isObject && json.has('nftables') ? 'nft-json' : null;
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'));
  if (lines.length === 0) return null;
  if (lines.some((l) => /^\*(nat|filter|mangle|raw|security)$/.test(l))) return 'iptables-save';
  if (lines.some((l) => /^table\s+(ip|inet|ip6|arp|bridge|netdev)\s+\S+\s*\{/.test(l))) return 'nft';
  if (lines.every((l) => /^-?[A-Za-z0-9_./*-]+\s*=\s*.*$/.test(l))) return 'sysctl';
  return null;
}

// --- iptables-save ---------------------------------------------------------------------------------

/** iptables-save tables the importer neither carries over nor reads. */
const SKIP_REASON: Record<string, string> = {
  raw: 'the scenario has no raw table (NOTRACK is not modelled)',
  security: 'the security table (SELinux marks) does not affect the NAT path',
};
/** nft chains other than nat ones. */
const NFT_FILTER_REASON =
  "nft filter chains are not imported: give iptables-save output (iptables-nft-save) to import the filter table, or copy the rules into the instance's iptables as a *filter section by hand";

export function readIptablesSave(text: string, file: string, h: HostConfig): void {
  h.files.push(file);
  if (h.natLines !== null && h.natFrom !== file)
    throw new InputError(
      `${file}: a second nat rule set for the same instance (already read ${h.natFrom}); give one of iptables-save or nft`,
      file,
      '',
    );
  const lines = text.split(/\r?\n/);
  let table: string | null = null;
  const userChains = new Set<string>();
  const policies: string[] = [];
  let sawNat = false;
  for (let k = 0; k < lines.length; k++) {
    const n = k + 1;
    const line = lines[k].trim();
    const where = `${file}:${n}`;
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      table = line.slice(1);
      userChains.clear();
      if (table === 'nat') sawNat = true;
      if ((CARRIED_TABLES as readonly string[]).includes(table)) h.tables[table as CarriedTable] = [];
      continue;
    }
    if (table === null)
      throw new InputError(
        `${where}: '${line.slice(0, 40)}' before any '*table' line (is this iptables-save output?)`,
        file,
        `line ${n}`,
      );
    if (line === 'COMMIT') {
      table = null;
      continue;
    }
    if (line.startsWith(':')) {
      const m = /^:(\S+)\s+(\S+)/.exec(line);
      if (!m) throw new InputError(`${where}: bad chain line '${line}'`, file, `line ${n}`);
      const [, chain, policy] = m;
      const carried = h.tables[table as CarriedTable];
      if (carried) {
        carried.push({ chain, policy, source: where });
        continue;
      }
      if (policy === '-') userChains.add(chain);
      if (table !== 'nat' && policy === 'DROP') policies.push(`${table} ${chain} policy DROP`);
      if (table === 'nat' && policy === '-')
        h.skipped.push({
          what: `nat chain ${chain}`,
          reason: 'user-defined chains are not in the scenario; the rules in it and jumps to it are skipped',
          source: where,
        });
      continue;
    }
    let toks = tokenize(line);
    if (typeof toks === 'string') throw new InputError(`${where}: ${toks}`, file, `line ${n}`);
    if (/^\[\d+:\d+\]$/.test(toks[0])) toks = toks.slice(1);
    if (toks[0] !== '-A' || toks.length < 2)
      throw new InputError(`${where}: expected '-A CHAIN ...', got '${line.slice(0, 40)}'`, file, `line ${n}`);
    const chain = toks[1];
    const carried = h.tables[table as CarriedTable];
    if (carried) {
      carried.push({ toks: toks.slice(1), source: where });
      continue;
    }
    if (table !== 'nat') {
      h.skipped.push({
        what: `${table} rule: ${toks.join(' ')}`,
        reason: SKIP_REASON[table] ?? `table ${table} is not modelled`,
        source: where,
      });
      continue;
    }
    if (!(NAT_CHAINS as readonly string[]).includes(chain)) {
      h.skipped.push({
        what: `nat rule: ${toks.join(' ')}`,
        reason: `it is in user-defined chain ${chain}, which the scenario cannot hold`,
        source: where,
      });
      continue;
    }
    const j = toks.indexOf('-j');
    if (j >= 0 && userChains.has(toks[j + 1])) {
      h.skipped.push({
        what: `nat rule: ${toks.join(' ')}`,
        reason: `it jumps to user-defined chain ${toks[j + 1]}, which the scenario cannot hold`,
        source: where,
      });
      continue;
    }
    (h.natLines ??= []).push({ chain: chain as NatChainName, toks: toks.slice(2), source: where });
  }
  if (table !== null) {
    let last = lines.length;
    while (last > 1 && lines[last - 1].trim() === '') last--;
    throw new InputError(`${file}:${last}: missing COMMIT at the end of *${table}`, file, '');
  }
  for (const p of policies)
    h.notes.push(
      `${file}: ${p}: the real instance drops what that chain's rules do not accept; natlab does not model this table`,
    );
  if (sawNat) {
    h.natLines ??= [];
    h.natFrom = file;
  }
}

// --- nft -------------------------------------------------------------------------------------------

/** A normalised nft match or statement, from text or JSON. */
type NftItem =
  | {
      m: 'saddr' | 'daddr' | 'oifname' | 'iifname' | 'l4proto' | 'tcp sport' | 'tcp dport' | 'udp sport' | 'udp dport';
      neg: boolean;
      value: string;
    }
  | { m: 'masquerade' | 'snat' | 'dnat'; addr: string | null; ports: string | null; flags: string[] }
  | { m: 'accept' | 'return' | 'counter' }
  | { m: 'comment'; text: string };

const HOOK_CHAIN: Record<string, NatChainName> = {
  prerouting: 'PREROUTING',
  input: 'INPUT',
  output: 'OUTPUT',
  postrouting: 'POSTROUTING',
};

class NftUnsupported extends Error {}

/** nft items → iptables-save tokens after `-A CHAIN`. Throws NftUnsupported. */
function nftToTokens(items: NftItem[]): string[] {
  const matches: string[] = [];
  let proto: string | null = null;
  const ports: string[] = [];
  let target: string[] | null = null;
  let comment: string | null = null;
  for (const it of items) {
    if (target && it.m !== 'comment' && it.m !== 'counter') throw new NftUnsupported(`'${it.m}' after the verdict`);
    switch (it.m) {
      case 'saddr':
      case 'daddr':
      case 'oifname':
      case 'iifname': {
        const opt = { saddr: '-s', daddr: '-d', oifname: '-o', iifname: '-i' }[it.m];
        const v = it.m === 'oifname' || it.m === 'iifname' ? it.value.replace(/\*$/, '+') : it.value;
        matches.push(...(it.neg ? ['!', opt, v] : [opt, v]));
        break;
      }
      case 'l4proto':
        if (it.neg) throw new NftUnsupported('negated protocol');
        if (proto && proto !== it.value) throw new NftUnsupported(`protocol ${it.value} after ${proto}`);
        proto = it.value;
        break;
      case 'tcp sport':
      case 'tcp dport':
      case 'udp sport':
      case 'udp dport': {
        const [p, dir] = it.m.split(' ');
        if (proto && proto !== p) throw new NftUnsupported(`${it.m} with protocol ${proto}`);
        proto = p;
        const opt = dir === 'sport' ? '--sport' : '--dport';
        ports.push(...(it.neg ? ['!', opt, it.value.replace('-', ':')] : [opt, it.value.replace('-', ':')]));
        break;
      }
      case 'counter':
        break;
      case 'comment':
        comment = it.text;
        break;
      case 'accept':
        target = ['-j', 'ACCEPT'];
        break;
      case 'return':
        target = ['-j', 'RETURN'];
        break;
      case 'masquerade':
        target = ['-j', 'MASQUERADE'];
        if (it.ports) target.push('--to-ports', it.ports);
        break;
      case 'snat':
      case 'dnat':
        if (!it.addr) throw new NftUnsupported(`${it.m} without an address`);
        target = [
          it.m === 'snat' ? '-j' : '-j',
          it.m === 'snat' ? 'SNAT' : 'DNAT',
          it.m === 'snat' ? '--to-source' : '--to-destination',
          it.addr + (it.ports ? `:${it.ports}` : ''),
        ];
        break;
    }
    if (it.m === 'masquerade' || it.m === 'snat' || it.m === 'dnat') {
      for (const f of it.flags) {
        if (f === 'random') target!.push('--random');
        else if (f === 'fully-random') target!.push('--random-fully');
        else if (f === 'persistent') target!.push('--persistent');
        else throw new NftUnsupported(`flag ${f}`);
      }
    }
  }
  if (!target) throw new NftUnsupported('no verdict natlab models (masquerade, snat, dnat, accept, return)');
  return [
    ...(proto ? ['-p', proto] : []),
    ...matches,
    ...(proto && ports.length ? ['-m', proto] : []),
    ...ports,
    ...(comment !== null ? ['-m', 'comment', '--comment', comment] : []),
    ...target,
  ];
}

function addNftRule(h: HostConfig, chain: NatChainName, items: NftItem[] | string, text: string, source: string): void {
  if (typeof items === 'string') {
    h.skipped.push({ what: `nft rule: ${text}`, reason: items, source });
    return;
  }
  try {
    (h.natLines ??= []).push({ chain, toks: nftToTokens(items), source });
  } catch (e) {
    if (!(e instanceof NftUnsupported)) throw e;
    h.skipped.push({
      what: `nft rule: ${text}`,
      reason: `not expressible in the scenario's nat table: ${e.message}`,
      source,
    });
  }
}

/** Splits nft text into tokens: words, "strings", braces and semicolons. */
function nftTokens(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|([{};,])|([^\s{};,"]+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) out.push(m[1] !== undefined ? `"${m[1]}"` : (m[2] ?? m[3]));
  return out;
}

const unq = (s: string): string => (s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s);

/** One nft rule line (tokens) → items, or a reason string when a statement is not modelled. */
function nftTextItems(t: string[]): NftItem[] | string {
  const items: NftItem[] = [];
  let i = 0;
  const neg = (): boolean => {
    if (t[i] === '!=') {
      i++;
      return true;
    }
    if (t[i] === '==') i++;
    return false;
  };
  const value = (): string => {
    if (t[i] === '{') throw new NftUnsupported('sets ({ a, b }) are not expressible as one iptables rule');
    return unq(t[i++] ?? '');
  };
  try {
    while (i < t.length) {
      const w = t[i++];
      if (w === 'ip' && (t[i] === 'saddr' || t[i] === 'daddr')) {
        const f = t[i++] as 'saddr' | 'daddr';
        const n = neg();
        items.push({ m: f, neg: n, value: value() });
      } else if (w === 'ip' && t[i] === 'protocol') {
        i++;
        const n = neg();
        items.push({ m: 'l4proto', neg: n, value: value() });
      } else if (w === 'meta' && t[i] === 'l4proto') {
        i++;
        const n = neg();
        items.push({ m: 'l4proto', neg: n, value: value() });
      } else if (w === 'oifname' || w === 'iifname' || (w === 'meta' && (t[i] === 'oifname' || t[i] === 'iifname'))) {
        const f = (w === 'meta' ? t[i++] : w) as 'oifname' | 'iifname';
        const n = neg();
        items.push({ m: f, neg: n, value: value() });
      } else if ((w === 'tcp' || w === 'udp') && (t[i] === 'sport' || t[i] === 'dport')) {
        const f = `${w} ${t[i++]}` as 'tcp dport';
        const n = neg();
        items.push({ m: f, neg: n, value: value() });
      } else if (w === 'counter') {
        if (t[i] === 'packets') i += 4; // counter packets N bytes M
        items.push({ m: 'counter' });
      } else if (w === 'comment') {
        items.push({ m: 'comment', text: unq(t[i++] ?? '') });
      } else if (w === 'accept' || w === 'return') {
        items.push({ m: w });
      } else if (w === 'masquerade' || w === 'snat' || w === 'dnat') {
        let addr: string | null = null;
        let ports: string | null = null;
        const flags: string[] = [];
        if (t[i] === 'ip') i++;
        if (t[i] === 'to') {
          i++;
          const x = unq(t[i++] ?? '');
          if (x.startsWith(':')) ports = x.slice(1);
          else {
            const c = x.lastIndexOf(':');
            if (c > 0) {
              addr = x.slice(0, c);
              ports = x.slice(c + 1);
            } else addr = x;
          }
        }
        while (i < t.length && ['random', 'fully-random', 'persistent', ','].includes(t[i])) {
          if (t[i] !== ',') flags.push(t[i]);
          i++;
        }
        items.push({ m: w, addr, ports, flags });
      } else {
        return `statement '${[w, ...t.slice(i, i + 2)].join(' ')}' is not modelled (natlab reads masquerade, snat, dnat, accept, return with ip saddr/daddr, iifname/oifname, l4proto and port matches)`;
      }
    }
  } catch (e) {
    if (e instanceof NftUnsupported) return e.message;
    throw e;
  }
  return items;
}

export function readNftText(text: string, file: string, h: HostConfig): void {
  h.files.push(file);
  if (h.natLines !== null)
    throw new InputError(
      `${file}: a second nat rule set for the same instance (already read ${h.natFrom}); give one of iptables-save or nft`,
      file,
      '',
    );
  h.natLines = [];
  h.natFrom = file;
  const lines = text.split(/\r?\n/);
  let table: { family: string; name: string } | null = null;
  let chain: { name: string; hook: NatChainName | null; type: string; policy: string; line: number } | null = null;
  let depth = 0;
  for (let k = 0; k < lines.length; k++) {
    const n = k + 1;
    const where = `${file}:${n}`;
    const raw = lines[k].trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const t = nftTokens(raw);
    if (t[0] === 'table' && depth === 0) {
      if (t.length < 4 || t[t.length - 1] !== '{')
        throw new InputError(`${where}: expected 'table FAMILY NAME {'`, file, `line ${n}`);
      table = { family: t[1], name: t[2] };
      depth = 1;
      continue;
    }
    if (t[0] === 'chain' && depth === 1) {
      chain = { name: t[1], hook: null, type: '', policy: 'accept', line: n };
      depth = 2;
      continue;
    }
    if (t[0] === '}') {
      if (depth === 2 && chain) {
        if (chain.type !== 'nat' && chain.policy === 'drop')
          h.notes.push(
            `${file}:${chain.line}: nft chain ${table?.name}/${chain.name} (${chain.type} hook) policy drop: the real instance drops what its filter rules do not accept; nft filter chains are not imported (give iptables-save output, iptables-nft-save, to import the filter table)`,
          );
        chain = null;
      } else if (depth === 1) table = null;
      depth = Math.max(0, depth - 1);
      continue;
    }
    if (depth === 1) {
      // sets, maps, flowtables, counters inside a table: not modelled
      h.skipped.push({
        what: `nft ${raw.slice(0, 60)}`,
        reason: 'sets, maps and flowtables are not modelled',
        source: where,
      });
      if (t[t.length - 1] === '{') depth = 3; // skip its body
      continue;
    }
    if (depth === 3) {
      if (t.includes('}')) depth = 1;
      continue;
    }
    if (depth !== 2 || !chain || !table)
      throw new InputError(
        `${where}: '${raw.slice(0, 40)}' outside a table/chain (is this nft list ruleset output?)`,
        file,
        `line ${n}`,
      );
    if (t[0] === 'type') {
      // type nat hook postrouting priority srcnat; policy accept;
      chain.type = t[1];
      const hi = t.indexOf('hook');
      chain.hook = hi >= 0 ? (HOOK_CHAIN[t[hi + 1]] ?? null) : null;
      const pi = t.indexOf('policy');
      if (pi >= 0) chain.policy = t[pi + 1];
      continue;
    }
    if (t[0] === 'policy') {
      chain.policy = t[1];
      continue;
    }
    const ruleText = raw.replace(/\s+#\s*handle\s+\d+$/, '');
    const toks = nftTokens(ruleText);
    const family = table.family;
    if (family !== 'ip' && family !== 'inet') {
      h.skipped.push({
        what: `nft rule (${family} ${table.name}/${chain.name}): ${ruleText}`,
        reason: family === 'ip6' ? 'IPv6 is not modelled' : `family ${family} is not modelled`,
        source: where,
      });
    } else if (chain.type !== 'nat') {
      h.skipped.push({
        what: `nft rule (${table.name}/${chain.name}): ${ruleText}`,
        reason: NFT_FILTER_REASON,
        source: where,
      });
    } else if (!chain.hook) {
      h.skipped.push({
        what: `nft rule (${table.name}/${chain.name}): ${ruleText}`,
        reason: `chain ${chain.name} has no hook (user-defined chains are not in the scenario)`,
        source: where,
      });
    } else {
      addNftRule(h, chain.hook, nftTextItems(toks), ruleText, where);
    }
  }
  if (depth !== 0) throw new InputError(`${file}:${lines.length}: unbalanced braces (${depth} left open)`, file, '');
}

/** One nft JSON expression → items (or a reason). */
function nftJsonItems(expr: J[]): NftItem[] | string {
  const items: NftItem[] = [];
  for (const e of expr) {
    const key = e.keys()[0];
    const v = e.at(key);
    if (key === 'match') {
      const op = v.at('op').str() ?? '==';
      const left = v.at('left');
      const right = v.at('right');
      if (op !== '==' && op !== '!=' && op !== 'in') return `match operator '${op}' is not modelled`;
      const neg = op === '!=';
      let val: string;
      if (typeof right.value === 'string' || typeof right.value === 'number') val = String(right.value);
      else if (right.isObject && right.has('prefix'))
        val = `${right.at('prefix').at('addr').s()}/${right.at('prefix').at('len').num(32)}`;
      else if (right.isObject && right.has('range')) {
        const [a, b] = right.at('range').list(true);
        val = `${String(a.value)}-${String(b.value)}`;
      } else
        return `match value ${JSON.stringify(right.value).slice(0, 40)} is not modelled (sets are not expressible as one iptables rule)`;
      if (left.has('payload')) {
        const p = left.at('payload');
        const proto = p.at('protocol').str();
        const field = p.at('field').str();
        if (proto === 'ip' && (field === 'saddr' || field === 'daddr')) items.push({ m: field, neg, value: val });
        else if (proto === 'ip' && field === 'protocol') items.push({ m: 'l4proto', neg, value: val });
        else if ((proto === 'tcp' || proto === 'udp') && (field === 'sport' || field === 'dport'))
          items.push({ m: `${proto} ${field}` as 'tcp dport', neg, value: val });
        else return `match on ${proto} ${field} is not modelled`;
      } else if (left.has('meta')) {
        const k = left.at('meta').at('key').str();
        if (k === 'oifname' || k === 'iifname') items.push({ m: k, neg, value: val });
        else if (k === 'l4proto') items.push({ m: 'l4proto', neg, value: val });
        else return `match on meta ${k} is not modelled`;
      } else return `match on ${left.keys()[0] ?? '?'} is not modelled`;
    } else if (key === 'counter') items.push({ m: 'counter' });
    else if (key === 'accept' || key === 'return') items.push({ m: key });
    else if (key === 'masquerade' || key === 'snat' || key === 'dnat') {
      const addr = v.isObject && v.has('addr') ? String(v.at('addr').value) : null;
      let ports: string | null = null;
      if (v.isObject && v.has('port')) {
        const p = v.at('port');
        ports =
          p.isObject && p.has('range')
            ? p
                .at('range')
                .list(true)
                .map((x) => String(x.value))
                .join('-')
            : String(p.value);
      }
      const flags = v.isObject
        ? Array.isArray(v.at('flags').value)
          ? v
              .at('flags')
              .list()
              .map((x) => x.s())
          : v.at('flags').str()
            ? [v.at('flags').s()]
            : []
        : [];
      items.push({ m: key, addr, ports, flags });
    } else return `statement '${key}' is not modelled`;
  }
  return items;
}

export function readNftJson(j: J, h: HostConfig): void {
  h.files.push(j.file);
  if (h.natLines !== null)
    throw new InputError(
      `${j.file}: a second nat rule set for the same instance (already read ${h.natFrom}); give one of iptables-save or nft`,
      j.file,
      '',
    );
  h.natLines = [];
  h.natFrom = j.file;
  const chains = new Map<string, { family: string; type: string; hook: NatChainName | null }>();
  for (const o of j.at('nftables').list(true)) {
    const where = `${j.file}: ${o.path}`;
    if (o.has('chain')) {
      const c = o.at('chain');
      const fam = c.at('family').s();
      const type = c.at('type').str() ?? '';
      chains.set(`${fam}/${c.at('table').s()}/${c.at('name').s()}`, {
        family: fam,
        type,
        hook: HOOK_CHAIN[c.at('hook').str() ?? ''] ?? null,
      });
      if (type !== 'nat' && c.at('policy').str() === 'drop')
        h.notes.push(
          `${where}: nft chain ${c.at('table').s()}/${c.at('name').s()} policy drop: the real instance drops what its filter rules do not accept; nft filter chains are not imported (give iptables-save output, iptables-nft-save, to import the filter table)`,
        );
    } else if (o.has('rule')) {
      const r = o.at('rule');
      const key = `${r.at('family').s()}/${r.at('table').s()}/${r.at('chain').s()}`;
      const c = chains.get(key);
      const exprs = r.at('expr').list(true);
      const text = `${key}: ${exprs.map((e) => e.keys()[0]).join(' ')}`;
      let items = nftJsonItems(exprs);
      if (typeof items !== 'string' && r.has('comment'))
        items = [...items, { m: 'comment', text: r.at('comment').s() }];
      if (!c)
        h.skipped.push({ what: `nft rule ${text}`, reason: `chain ${key} is not declared before it`, source: where });
      else if (c.family !== 'ip' && c.family !== 'inet')
        h.skipped.push({
          what: `nft rule ${text}`,
          reason: c.family === 'ip6' ? 'IPv6 is not modelled' : `family ${c.family} is not modelled`,
          source: where,
        });
      else if (c.type !== 'nat') h.skipped.push({ what: `nft rule ${text}`, reason: NFT_FILTER_REASON, source: where });
      else if (!c.hook)
        h.skipped.push({
          what: `nft rule ${text}`,
          reason: 'chain has no hook (user-defined chains are not in the scenario)',
          source: where,
        });
      else addNftRule(h, c.hook, items, text, where);
    } else if (o.has('set') || o.has('map') || o.has('flowtable')) {
      h.skipped.push({
        what: `nft ${o.keys()[0]}`,
        reason: 'sets, maps and flowtables are not modelled',
        source: where,
      });
    }
  }
}

// --- sysctl ---------------------------------------------------------------------------------------

export function readSysctl(text: string, file: string, h: HostConfig): void {
  h.files.push(file);
  const lines = text.split(/\r?\n/);
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k].trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^-?([A-Za-z0-9_./*-]+)\s*=\s*(.*)$/.exec(line);
    if (!m)
      throw new InputError(
        `${file}:${k + 1}: expected 'key = value' (sysctl.conf format), got '${line.slice(0, 40)}'`,
        file,
        `line ${k + 1}`,
      );
    h.sysctlLines.push({ key: m[1].replace(/\//g, '.'), value: m[2].trim(), source: `${file}:${k + 1}` });
  }
}

// --- interface names and assembly -------------------------------------------------------------------

function ifaceNames(h: HostConfig): Set<string> {
  const names = new Set<string>();
  const toksOf = [
    ...(h.natLines ?? []).map((l) => l.toks),
    ...CARRIED_TABLES.flatMap((t) => (h.tables[t] ?? []).flatMap((l) => ('toks' in l ? [l.toks] : []))),
  ];
  for (const toks of toksOf)
    for (let i = 0; i < toks.length - 1; i++) if (toks[i] === '-o' || toks[i] === '-i') names.add(toks[i + 1]);
  for (const s of h.sysctlLines) {
    const m = /^net\.ipv4\.conf\.([^.]+)\./.exec(s.key);
    if (m && m[1] !== 'all' && m[1] !== 'default' && m[1] !== 'lo') names.add(m[1]);
  }
  return names;
}

/**
 * The interface name the host calls its primary ENI, renamed to the scenario's eth0: given, or
 * the one primary-looking name (ens5, enX0...) its rules and sysctls use when eth0 is not used.
 */
export function primaryIface(h: HostConfig, given: string | null): string {
  if (given) return given;
  const names = [...ifaceNames(h)].filter((n) => PRIMARY_IFACE_RE.test(n.replace(/\+$/, '')) && !n.endsWith('+'));
  if (names.includes(SCENARIO_IFACE) || names.length !== 1) return SCENARIO_IFACE;
  return names[0];
}

const TIMEOUT_BY_SYSCTL: Record<string, keyof ConntrackTimeouts> = Object.fromEntries(
  Object.entries(TIMEOUT_SYSCTLS).map(([k, v]) => [v, k as keyof ConntrackTimeouts]),
);

export interface HostResult {
  /** iptables-save text of the nat table, or null when no nat rules source was given. */
  natText: string | null;
  /** iptables-save text of the `*filter` and `*mangle` tables the scenario parser accepts ('' if none). */
  tablesText: string;
  sysctls: HostSysctls;
  conntrack: HostConntrack;
}

function boolValue(v: string, source: string): boolean {
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw new InputError(`${source}: expected 0 or 1, got '${v}'`, source.split(':')[0], source);
}

/**
 * The scenario's view of a host: nat text (each rule validated alone; a rule natlab cannot parse
 * is skipped with the parser's reason), sysctls, conntrack settings. `iface` is the host's name
 * for its primary interface; it becomes eth0.
 */
export function resolveHost(h: HostConfig, iface: string, instance: string): HostResult {
  const rename = (n: string): string => (n === iface ? SCENARIO_IFACE : n);
  if (iface !== SCENARIO_IFACE)
    h.notes.push(
      `instance ${instance}: interface ${iface} (its primary ENI) is called ${SCENARIO_IFACE} in the scenario`,
    );
  const quote = (t: string): string =>
    /^[A-Za-z0-9_.:/+!-]+$/.test(t) ? t : `"${t.replace(/["\\]/g, (c) => `\\${c}`)}"`;
  const renameToks = (ts: string[]): string[] =>
    ts.map((t, i) => (i > 0 && (ts[i - 1] === '-o' || ts[i - 1] === '-i') ? rename(t) : t));
  let tablesText = '';
  for (const t of CARRIED_TABLES) {
    const lines = h.tables[t];
    // A table without rules whose policies are all ACCEPT changes nothing: not written.
    if (!lines || lines.every((l) => 'policy' in l && (l.policy === 'ACCEPT' || l.policy === '-'))) continue;
    const text = lines.map((l) =>
      'toks' in l ? `-A ${renameToks(l.toks).map(quote).join(' ')}` : `:${l.chain} ${l.policy} [0:0]`,
    );
    const el = new ErrorList(lines[0]?.source ?? '');
    const parse = t === 'filter' ? parseFilterTable : parseMangleTable;
    parse([`*${t}`, ...text, 'COMMIT', ''].join('\n'), '', 0, '', el);
    if (el.count === 0) {
      tablesText += [`*${t}`, ...text, 'COMMIT', ''].join('\n');
      continue;
    }
    // Line k of the parsed text is lines[k - 2] (line 1 is *table).
    for (const e of el.items) {
      const l = lines[e.line - 2];
      h.skipped.push({
        what: `${t} table of ${instance}${l ? `: ${text[e.line - 2]}` : ''}`,
        reason: `natlab cannot express it (${e.msg}), so the instance is imported without its ${t} table (part of a table would ${t === 'filter' ? 'filter' : 'act'} differently)`,
        source: l?.source ?? lines[0]?.source ?? '',
      });
    }
    if (t === 'filter' && lines.some((l) => 'policy' in l && l.policy === 'DROP'))
      h.notes.push(
        `instance ${instance}: its filter table has a policy DROP: the real instance drops what its rules do not accept; natlab does not, as the table is left out`,
      );
  }
  let natText: string | null = null;
  if (h.natLines !== null) {
    const kept: string[] = [];
    for (const l of h.natLines) {
      const toks = l.toks.map((t, i) => (i > 0 && (l.toks[i - 1] === '-o' || l.toks[i - 1] === '-i') ? rename(t) : t));
      const text = `-A ${l.chain} ${toks.map((t) => (/^[A-Za-z0-9_.:/+!-]+$/.test(t) ? t : `"${t.replace(/["\\]/g, (c) => `\\${c}`)}"`)).join(' ')}`;
      const el = new ErrorList(l.source);
      parseNatTable(`*nat\n${text}\nCOMMIT\n`, l.source, 0, '', el);
      if (el.count > 0)
        h.skipped.push({
          what: `nat rule: ${text}`,
          reason: `natlab cannot express it: ${el.items[0].msg}`,
          source: l.source,
        });
      else kept.push(text);
    }
    natText = ['*nat', ...NAT_CHAINS.map((c) => `:${c} ACCEPT [0:0]`), ...kept, 'COMMIT', ''].join('\n');
  }
  const sysctls: HostSysctls = {};
  const conntrack: HostConntrack = { timeouts: {} };
  const other: string[] = [];
  for (const { key, value, source } of h.sysctlLines) {
    const m = /^net\.ipv4\.conf\.([^.]+)\.send_redirects$/.exec(key);
    if (key === 'net.ipv4.ip_forward') sysctls.ipForward = boolValue(value, source);
    else if (m && m[1] === 'all') sysctls.sendRedirectsAll = boolValue(value, source);
    else if (m && rename(m[1]) === SCENARIO_IFACE) sysctls.sendRedirectsEth0 = boolValue(value, source);
    else if (ICMP_SYSCTL_KEYS.has(key)) {
      if (!/^\d+$/.test(value))
        throw new InputError(`${source}: ${key}: expected a non-negative integer, got '${value}'`, source, key);
      sysctls.icmp = { ...sysctls.icmp, [key]: Number(value) };
    } else if (key === 'net.netfilter.nf_conntrack_max' || key === 'net.nf_conntrack_max') {
      if (!/^\d+$/.test(value))
        throw new InputError(`${source}: ${key}: expected an integer, got '${value}'`, source, key);
      conntrack.max = Number(value);
    } else if (key === 'net.netfilter.nf_conntrack_tcp_loose') conntrack.tcpLoose = boolValue(value, source);
    else if (key === 'net.netfilter.nf_conntrack_checksum') conntrack.checksum = boolValue(value, source);
    else if (key === 'net.netfilter.nf_conntrack_tcp_ignore_invalid_rst')
      conntrack.tcpIgnoreInvalidRst = boolValue(value, source);
    else if (key === 'net.netfilter.nf_conntrack_tcp_be_liberal') conntrack.tcpBeLiberal = boolValue(value, source);
    else if (key === 'net.netfilter.nf_conntrack_tcp_max_retrans') {
      if (!/^\d+$/.test(value) || Number(value) > 255)
        throw new InputError(`${source}: ${key}: expected an integer 0..255, got '${value}'`, source, key);
      conntrack.tcpMaxRetrans = Number(value);
    } else if (key.startsWith('net.netfilter.') && TIMEOUT_BY_SYSCTL[key.slice('net.netfilter.'.length)]) {
      if (!/^\d+$/.test(value))
        throw new InputError(`${source}: ${key}: expected seconds, got '${value}'`, source, key);
      conntrack.timeouts[TIMEOUT_BY_SYSCTL[key.slice('net.netfilter.'.length)]] = Number(value);
    } else other.push(key);
  }
  if (other.length) {
    const uniq = [...new Set(other)];
    h.skipped.push({
      what: `${uniq.length} sysctl${uniq.length === 1 ? '' : 's'}: ${uniq.slice(0, 6).join(', ')}${uniq.length > 6 ? ', …' : ''}`,
      reason:
        'not part of the path natlab models (it reads ip_forward, send_redirects, nf_conntrack_max, tcp_loose, checksum and the conntrack timeouts)',
      source: [
        ...new Set(h.sysctlLines.filter((s) => uniq.includes(s.key)).map((s) => s.source.replace(/:\d+$/, ''))),
      ].join(', '),
    });
  }
  return { natText, tablesText, sysctls, conntrack };
}
