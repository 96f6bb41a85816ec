// The filter table of a NAT instance, run as ipt_do_table runs it (net/ipv4/netfilter/ip_tables.c):
// rules in order; a matching rule's counter counts; ACCEPT/DROP end the walk; REJECT drops after
// sending its answer (ipt_REJECT.c); LOG counts and goes on; -j CHAIN jumps (a stack of return
// points), RETURN or the end of a user chain goes back, the end of a built-in chain is its policy.
// A tcp/udp/icmp/multiport match that cannot read its header drops the packet ("hotdrop").
// The state match sees the packet's conntrack state (xt_conntrack.c: XT_CONNTRACK_STATE_BIT(ctinfo),
// INVALID without an entry) — conntrack runs before the filter table at every hook.

import { rd16 } from '../packet/bytes.ts';
import {
  CTSTATE_ESTABLISHED,
  CTSTATE_INVALID,
  CTSTATE_NEW,
  CTSTATE_RELATED,
  type FilterChainName,
  type FilterRule,
  type FilterTable,
  ICMP_TYPE_ANY,
  type IfaceMatch,
  type RejectWith,
} from '../spec/scenario.ts';
import { CT_ESTABLISHED, CT_NEW, CT_RELATED } from '../spec/reasons.ts';

/** What the filter table sees of a packet: the bytes (IP header at 0), the devices and the conntrack state. */
export interface FilterPacket {
  pkt: Uint8Array;
  /** IP header length, total length, protocol, addresses and fragment offset of `pkt`. */
  ihl: number;
  totalLen: number;
  proto: number;
  src: number;
  dst: number;
  fragOff: number;
  inDev: string;
  outDev: string;
  /** CTSTATE_* bit of the packet. */
  ctstate: number;
}

export const FILTER_ACCEPT = 0;
export const FILTER_DROP = 1;
export const FILTER_REJECT = 2;
/** A match could not read its header (tcp/udp/icmp/multiport hotdrop): dropped. */
export const FILTER_HOTDROP = 3;

export interface FilterResult {
  verdict: number;
  /** The chain and rule that decided (rule -1: the built-in chain's policy). */
  chain: string;
  rule: number;
  /** REJECT: what is sent back. */
  rejectWith: RejectWith;
  /** Every counter the packet counts in: [chain, rule] (rule -1: policy). */
  counted: Array<[string, number]>;
  /** LOG rules the packet passed (chain rule-number), for the trace. */
  logged: string[];
}

/** The CTSTATE_* bit of a conntrack classification (CT_NEW, ...; anything else INVALID). */
export function ctstateBit(ctinfo: number): number {
  if (ctinfo === CT_NEW) return CTSTATE_NEW;
  if (ctinfo === CT_ESTABLISHED) return CTSTATE_ESTABLISHED;
  if (ctinfo === CT_RELATED) return CTSTATE_RELATED;
  return CTSTATE_INVALID;
}

function ifaceHit(m: IfaceMatch | null, dev: string): boolean {
  if (!m) return true;
  const n = m.name;
  const hit = n.endsWith('+') ? dev.startsWith(n.slice(0, -1)) : n === dev;
  return hit !== m.neg;
}

function cidrHit(m: FilterRule['src'], a: number): boolean {
  if (!m) return true;
  const len = m.cidr.len;
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((a & mask) >>> 0 === m.cidr.addr) !== m.neg;
}

const TCP_HDR = 20;
const UDP_HDR = 8;
const ICMP_HDR = 8;
const PORTS_LEN = 4;

/** 1 match, 0 no match, -1 hotdrop: ip_packet_match, then the rule's matches in its text's order. */
export function filterRuleMatches(r: FilterRule, p: FilterPacket): number {
  if (!cidrHit(r.src, p.src) || !cidrHit(r.dst, p.dst)) return 0;
  if (!ifaceHit(r.inIface, p.inDev) || !ifaceHit(r.outIface, p.outDev)) return 0;
  if (r.proto && (r.proto.proto === p.proto) === r.proto.neg) return 0;
  const l4Len = p.totalLen - p.ihl;
  const o = p.ihl;
  const b = p.pkt;
  if (r.l4Match) {
    if (p.fragOff !== 0) return 0;
    if (l4Len < (r.l4Match === 'tcp' ? TCP_HDR : UDP_HDR)) return -1;
    const sp = rd16(b, o);
    const dp = rd16(b, o + 2);
    if (r.sport && (sp >= r.sport.lo && sp <= r.sport.hi) === r.sport.neg) return 0;
    if (r.dport && (dp >= r.dport.lo && dp <= r.dport.hi) === r.dport.neg) return 0;
    if (r.tcpFlags && ((b[o + 13] & r.tcpFlags.mask) === r.tcpFlags.cmp) === r.tcpFlags.neg) return 0;
  }
  if (r.icmp) {
    if (p.fragOff !== 0) return 0;
    if (l4Len < ICMP_HDR) return -1;
    const t = r.icmp;
    const hit = t.type === ICMP_TYPE_ANY || (b[o] === t.type && b[o + 1] >= t.codeLo && b[o + 1] <= t.codeHi);
    if (hit === t.neg) return 0;
  }
  if (r.multiport) {
    if (p.fragOff !== 0) return 0;
    if (l4Len < PORTS_LEN) return -1;
    const m = r.multiport;
    const sp = rd16(b, o);
    const dp = rd16(b, o + 2);
    let hit = false;
    for (let k = 0; k < m.lo.length && !hit; k++) {
      const s = m.dir !== 'dports' && sp >= m.lo[k] && sp <= m.hi[k];
      const d = m.dir !== 'sports' && dp >= m.lo[k] && dp <= m.hi[k];
      hit = s || d;
    }
    if (hit === m.neg) return 0;
  }
  if (r.ctstate && ((r.ctstate.states & p.ctstate) !== 0) === r.ctstate.neg) return 0;
  return 1;
}

/** The most chains a walk may enter (the parser refuses loops; this is the walk's real bound). */
const MAX_DEPTH = 64;

/** Runs built-in chain `chain` of `t` on the packet (ipt_do_table). */
export function runFilterChain(t: FilterTable, chain: FilterChainName, p: FilterPacket): FilterResult {
  const res: FilterResult = {
    verdict: FILTER_ACCEPT,
    chain,
    rule: -1,
    rejectWith: 'icmp-port-unreachable',
    counted: [],
    logged: [],
  };
  const stack: Array<[string, number]> = [];
  let cur: string = chain;
  let k = 0;
  for (let steps = 0; steps < 1_000_000; steps++) {
    const rules = t.chains[cur];
    if (k >= rules.length) {
      if (stack.length === 0) {
        res.counted.push([chain, -1]);
        res.verdict = t.policy[chain] === 'DROP' ? FILTER_DROP : FILTER_ACCEPT;
        res.chain = chain;
        res.rule = -1;
        return res;
      }
      [cur, k] = stack.pop() as [string, number];
      continue;
    }
    const r = rules[k];
    const m = filterRuleMatches(r, p);
    if (m < 0) {
      res.verdict = FILTER_HOTDROP;
      res.chain = cur;
      res.rule = k;
      return res;
    }
    if (m === 0) {
      k++;
      continue;
    }
    res.counted.push([cur, k]);
    switch (r.target) {
      case 'ACCEPT':
      case 'DROP':
      case 'REJECT':
        res.verdict = r.target === 'ACCEPT' ? FILTER_ACCEPT : r.target === 'DROP' ? FILTER_DROP : FILTER_REJECT;
        res.rejectWith = r.rejectWith;
        res.chain = cur;
        res.rule = k;
        return res;
      case 'LOG':
        res.logged.push(`${cur} rule ${k + 1}`);
        k++;
        break;
      case 'RETURN':
        if (stack.length === 0) {
          // RETURN in a built-in chain: its policy (the underflow rule).
          res.counted.push([chain, -1]);
          res.verdict = t.policy[chain] === 'DROP' ? FILTER_DROP : FILTER_ACCEPT;
          res.chain = chain;
          res.rule = -1;
          return res;
        }
        [cur, k] = stack.pop() as [string, number];
        break;
      case 'JUMP':
        if (stack.length >= MAX_DEPTH) {
          res.verdict = FILTER_DROP;
          res.chain = cur;
          res.rule = k;
          return res;
        }
        stack.push([cur, k + 1]);
        cur = r.chain;
        k = 0;
        break;
    }
  }
  res.verdict = FILTER_DROP;
  return res;
}

/** `FORWARD rule 3` / `FORWARD policy DROP` — where a verdict came from, for hops. */
export function filterWhere(t: FilterTable, res: FilterResult): string {
  if (res.rule < 0) return `${res.chain} policy ${t.policy[res.chain as FilterChainName]}`;
  return `${res.chain} rule ${res.rule + 1}: ${t.chains[res.chain][res.rule].text}`;
}
