// `iptables -t nat -L -v -n` exactly as iptables prints it (iptables/iptables.c print_header /
// print_firewall, xtables_print_num with FMT_KILOMEGAGIGA, libxt_tcp/udp, libxt_MASQUERADE and
// libxt_NAT print functions). Counters count connections: nat rules only see first packets.

import { formatIpv4 } from '../packet/addr.ts';
import type { NatRuleCounter } from '../spec/engine.ts';
import {
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

/** One rule line of `iptables -L -v -n` (print_firewall). */
export function formatListingRule(r: NatRule, packets: number, bytes: number): string {
  let s = iptablesNum(packets) + iptablesNum(bytes);
  s += `${r.target.kind.padEnd(9)} `;
  s += r.proto?.neg ? '!' : ' ';
  s += protoName(r.proto ? r.proto.proto : 0).padEnd(5);
  s += '-- ';
  s += ` ${ifaceText(r.inIface).padEnd(6)} `;
  s += `${ifaceText(r.outIface).padEnd(6)} `;
  s += r.src?.neg ? '!' : ' ';
  s += `${addrText(r.src).padEnd(19)} `;
  s += r.dst?.neg ? '!' : ' ';
  s += `${addrText(r.dst).padEnd(19)} `;
  s += matchText(r);
  s += targetText(r.target);
  return s;
}

/** print_header: `Chain X (policy ACCEPT n packets, b bytes)` and the column header. */
function header(chain: string, packets: number, bytes: number): string[] {
  return [
    `Chain ${chain} (policy ACCEPT ${iptablesNum(packets, false)}packets, ${iptablesNum(bytes, false)}bytes)`,
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
