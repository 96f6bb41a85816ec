// `iptables -t nat -L -v -n` exactly as iptables prints it (iptables/iptables.c print_header /
// print_firewall, xtables_print_num with FMT_KILOMEGAGIGA, libxt_tcp/udp, libxt_MASQUERADE and
// libxt_NAT print functions). Counters count connections: nat rules only see first packets.

import { formatIpv4 } from '../packet/addr.ts';
import type { FilterRuleCounter, NatRuleCounter } from '../spec/engine.ts';
import {
  CTSTATE_NAMES,
  FILTER_CHAINS,
  type FilterChainName,
  type FilterRule,
  type FilterTable,
  NAT_CHAINS,
  NF_NAT_RANGE_MAP_IPS,
  NF_NAT_RANGE_PERSISTENT,
  NF_NAT_RANGE_PROTO_RANDOM,
  NF_NAT_RANGE_PROTO_RANDOM_FULLY,
  NF_NAT_RANGE_PROTO_SPECIFIED,
  type NatRule,
  type NatTable,
  type NatTarget,
  type PortMatch,
} from '../spec/scenario.ts';
import { protoName } from '../scenario/iptables.ts';

/** xtables_print_num without -x: plain up to 99999, then K/M/G/T rounded. */
export function iptablesNum(n: number, table = true): string {
  let v = n;
  let suffix = '';
  if (v > 99999) {
    for (const s of ['K', 'M', 'G', 'T']) {
      v = Math.floor((v + 500) / 1000);
      suffix = s;
      if (v <= 9999 || s === 'T') break;
    }
  }
  const text = `${v}${suffix}`;
  if (!table) return `${text} `;
  return suffix ? `${String(v).padStart(4)}${suffix} ` : `${text.padStart(5)} `;
}

function ports(name: string, m: PortMatch): string {
  if (m.lo === 0 && m.hi === 0xffff && !m.neg) return '';
  const inv = m.neg ? '!' : '';
  return m.lo === m.hi ? ` ${name}:${inv}${m.lo}` : ` ${name}s:${inv}${m.lo}:${m.hi}`;
}

/** The -m tcp / -m udp match print (" tcp dpt:80"). */
function matchText(r: NatRule): string {
  if (!r.sport && !r.dport) return '';
  const p = r.proto ? protoName(r.proto.proto) : 'tcp';
  return ` ${p}${r.sport ? ports('spt', r.sport) : ''}${r.dport ? ports('dpt', r.dport) : ''}`;
}

function rangeText(t: NatTarget): string {
  let s = '';
  if (t.flags & NF_NAT_RANGE_MAP_IPS) {
    s += formatIpv4(t.addrLo);
    if (t.addrHi !== t.addrLo) s += `-${formatIpv4(t.addrHi)}`;
  }
  if (t.flags & NF_NAT_RANGE_PROTO_SPECIFIED) {
    s += `:${t.portLo}`;
    if (t.portHi !== t.portLo) s += `-${t.portHi}`;
  }
  return s;
}

/** The target's print function (" masq ports: 1024-65535", " to:1.2.3.4:80"). */
function targetText(t: NatTarget): string {
  let s = '';
  switch (t.kind) {
    case 'MASQUERADE':
      if (t.flags & NF_NAT_RANGE_PROTO_SPECIFIED)
        s += ` masq ports: ${t.portLo}${t.portHi !== t.portLo ? `-${t.portHi}` : ''}`;
      if (t.flags & NF_NAT_RANGE_PROTO_RANDOM) s += ' random';
      if (t.flags & NF_NAT_RANGE_PROTO_RANDOM_FULLY) s += ' random-fully';
      return s;
    case 'SNAT':
    case 'DNAT':
      s = ` to:${rangeText(t)}`;
      if (t.flags & NF_NAT_RANGE_PROTO_RANDOM) s += ' random';
      if (t.flags & NF_NAT_RANGE_PROTO_RANDOM_FULLY) s += ' random-fully';
      if (t.flags & NF_NAT_RANGE_PERSISTENT) s += ' persistent';
      return s;
    default:
      return '';
  }
}

function addrText(m: NatRule['src']): string {
  if (!m) return '0.0.0.0/0';
  const c = m.cidr;
  return c.len === 32 ? formatIpv4(c.addr) : `${formatIpv4(c.addr)}/${c.len}`;
}

function ifaceText(m: NatRule['inIface']): string {
  if (!m) return '*';
  return `${m.neg ? '!' : ''}${m.name}`;
}

/** The columns every rule line has (print_firewall up to the matches). */
function ruleColumns(
  target: string,
  r: Pick<NatRule, 'proto' | 'inIface' | 'outIface' | 'src' | 'dst'>,
  packets: number,
  bytes: number,
): string {
  let s = iptablesNum(packets) + iptablesNum(bytes);
  s += `${target.padEnd(9)} `;
  s += r.proto?.neg ? '!' : ' ';
  s += protoName(r.proto ? r.proto.proto : 0).padEnd(5);
  s += '-- ';
  s += ` ${ifaceText(r.inIface).padEnd(6)} `;
  s += `${ifaceText(r.outIface).padEnd(6)} `;
  s += r.src?.neg ? '!' : ' ';
  s += `${addrText(r.src).padEnd(19)} `;
  s += r.dst?.neg ? '!' : ' ';
  s += `${addrText(r.dst).padEnd(19)} `;
  return s;
}

/** The match and target prints of a filter rule (libxt_tcp/udp/icmp/multiport/conntrack/state/comment, REJECT, LOG; -n). */
function filterMatchText(r: FilterRule): string {
  let s = '';
  if (r.l4Match) {
    s += ` ${r.l4Match}`;
    if (r.sport) s += ports('spt', r.sport);
    if (r.dport) s += ports('dpt', r.dport);
    if (r.tcpFlags) s += ` flags:${r.tcpFlags.neg ? '!' : ''}0x${hex2(r.tcpFlags.mask)}/0x${hex2(r.tcpFlags.cmp)}`;
  }
  if (r.icmp) {
    const t = r.icmp;
    s += ` icmptype ${t.neg ? '!' : ''}${t.type}`;
    if (t.codeLo === t.codeHi) s += ` code ${t.codeLo}`;
    else if (t.codeLo !== 0 || t.codeHi !== 255) s += ` codes ${t.codeLo}-${t.codeHi}`;
  }
  if (r.multiport) {
    const m = r.multiport;
    const list = m.lo.map((lo, k) => (lo === m.hi[k] ? String(lo) : `${lo}:${m.hi[k]}`)).join(',');
    s += ` multiport ${m.dir} ${m.neg ? '! ' : ''}${list}`;
  }
  if (r.ctstate) {
    const names = CTSTATE_NAMES.filter(([, b]) => r.ctstate!.states & b).map(([n]) => n);
    s += ` ${r.ctstate.module === 'conntrack' ? 'ctstate' : 'state'} ${r.ctstate.neg ? '! ' : ''}${names.join(',')}`;
  }
  const comment = /-m comment --comment (?:"((?:[^"\\]|\\.)*)"|(\S+))/.exec(r.text);
  if (comment) s += ` /* ${(comment[1] ?? comment[2]).replace(/\\(.)/g, '$1')} */`;
  if (r.target === 'REJECT') s += ` reject-with ${r.rejectWith}`;
  if (r.target === 'LOG')
    s += ` LOG flags 0 level ${r.logLevel}${r.logPrefix !== null ? ` prefix "${r.logPrefix}"` : ''}`;
  return s;
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

/** `iptables -L -v -n` for a filter table and its counters (one instance's): built-in chains, then user chains. */
export function formatFilterListing(t: FilterTable, counters: readonly FilterRuleCounter[]): string {
  const get = (chain: string, rule: number): FilterRuleCounter | undefined =>
    counters.find((c) => c.chain === chain && c.rule === rule);
  const out: string[] = [];
  for (const chain of [...FILTER_CHAINS, ...t.userChains]) {
    if (out.length > 0) out.push('');
    if ((FILTER_CHAINS as readonly string[]).includes(chain)) {
      const pol = get(chain, -1);
      out.push(...header(chain, pol?.packets ?? 0, pol?.bytes ?? 0, t.policy[chain as FilterChainName]));
    } else {
      const refs = Object.values(t.chains)
        .flat()
        .filter((r) => r.target === 'JUMP' && r.chain === chain).length;
      out.push(...header(chain, 0, 0, null, refs));
    }
    t.chains[chain].forEach((r, k) => {
      const c = get(chain, k);
      const target = r.target === 'JUMP' ? r.chain : r.target;
      out.push(ruleColumns(target, r, c?.packets ?? 0, c?.bytes ?? 0) + filterMatchText(r));
    });
  }
  return `${out.join('\n')}\n`;
}

/** One rule line of `iptables -L -v -n` (print_firewall). */
export function formatListingRule(r: NatRule, packets: number, bytes: number): string {
  let s = ruleColumns(r.target.kind, r, packets, bytes);
  s += matchText(r);
  s += targetText(r.target);
  return s;
}

/** print_header: `Chain X (policy P n packets, b bytes)` (a user chain: `(N references)`) and the column header. */
function header(chain: string, packets: number, bytes: number, policy: string | null = 'ACCEPT', refs = 0): string[] {
  return [
    policy === null
      ? `Chain ${chain} (${refs} references)`
      : `Chain ${chain} (policy ${policy} ${iptablesNum(packets, false)}packets, ${iptablesNum(bytes, false)}bytes)`,
    `${'pkts'.padStart(5)} ${'bytes'.padStart(5)} ${'target'.padEnd(9)}  prot opt ${'in'.padEnd(6)} ${'out'.padEnd(6)}  ${'source'.padEnd(19)}  ${'destination'.padEnd(19)} `,
  ];
}

/** `iptables -t nat -L -v -n` for a nat table and its counters (one instance's). */
export function formatNatListing(nat: NatTable, counters: readonly NatRuleCounter[]): string {
  const get = (chain: string, rule: number): NatRuleCounter | undefined =>
    counters.find((c) => c.chain === chain && c.rule === rule);
  const out: string[] = [];
  NAT_CHAINS.forEach((chain, i) => {
    if (i > 0) out.push('');
    const pol = get(chain, -1);
    out.push(...header(chain, pol?.packets ?? 0, pol?.bytes ?? 0));
    nat.chains[chain].forEach((r, k) => {
      const c = get(chain, k);
      out.push(formatListingRule(r, c?.packets ?? 0, c?.bytes ?? 0));
    });
  });
  return `${out.join('\n')}\n`;
}

/** The engine's nat table listing for one instance (index into scenario.instances). */
export function formatNatTableListing(
  engine: {
    scenario: { instances: readonly { nat: NatTable | null; name: string }[] };
    natCountersSync(): NatRuleCounter[];
  },
  instance: number,
): string {
  const inst = engine.scenario.instances[instance];
  if (!inst?.nat) throw new Error(`instance ${inst ? inst.name : instance} has no nat table`);
  return formatNatListing(
    inst.nat,
    engine.natCountersSync().filter((c) => c.instance === instance),
  );
}
