// The packet-field columns every compiled iptables rule of the core has (the mangle table's TCPMSS
// rules, tcpmss.ts; the filter table, filter.ts): addresses, protocol, the tcp/udp match's ports and
// flags — one entry per rule index k, compiled once, matched with no allocation per packet.
import { cidrMask } from '../packet/addr.ts';
import type { RuleMatches } from '../spec/scenario.ts';
import type { PacketView } from '../packet/parse.ts';
import { rd16 } from '../packet/bytes.ts';
import { PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';

export const MODE_NONE = 0;
export const MODE_POS = 1;
export const MODE_NEG = 2;
const TCP_HDR = 20;
const UDP_HDR = 8;

export interface RuleColumns {
  srcMode: Uint8Array;
  srcAddr: Uint32Array;
  srcMask: Uint32Array;
  dstMode: Uint8Array;
  dstAddr: Uint32Array;
  dstMask: Uint32Array;
  protoMode: Uint8Array;
  proto: Uint8Array;
  /** 0, or PROTO_TCP / PROTO_UDP: the tcp/udp match module the rule loads. */
  l4: Uint8Array;
  spMode: Uint8Array;
  spLo: Uint16Array;
  spHi: Uint16Array;
  dpMode: Uint8Array;
  dpLo: Uint16Array;
  dpHi: Uint16Array;
  flMode: Uint8Array;
  flMask: Uint8Array;
  flCmp: Uint8Array;
}

/** Columns for `n` rules, every match off. */
export function ruleColumns(n: number): RuleColumns {
  return {
    srcMode: new Uint8Array(n),
    srcAddr: new Uint32Array(n),
    srcMask: new Uint32Array(n),
    dstMode: new Uint8Array(n),
    dstAddr: new Uint32Array(n),
    dstMask: new Uint32Array(n),
    protoMode: new Uint8Array(n),
    proto: new Uint8Array(n),
    l4: new Uint8Array(n),
    spMode: new Uint8Array(n),
    spLo: new Uint16Array(n),
    spHi: new Uint16Array(n),
    dpMode: new Uint8Array(n),
    dpLo: new Uint16Array(n),
    dpHi: new Uint16Array(n),
    flMode: new Uint8Array(n),
    flMask: new Uint8Array(n),
    flCmp: new Uint8Array(n),
  };
}

/** Rule k's -s/-d, tcp/udp module, --sport/--dport and --tcp-flags (the caller compiles -p: the tables differ on `-p all`). */
export function compileRuleColumns(
  m: RuleColumns,
  k: number,
  r: Pick<RuleMatches, 'src' | 'dst' | 'l4Match' | 'sport' | 'dport' | 'tcpFlags'>,
): void {
  if (r.src) {
    m.srcMode[k] = r.src.neg ? MODE_NEG : MODE_POS;
    m.srcAddr[k] = r.src.cidr.addr >>> 0;
    m.srcMask[k] = cidrMask(r.src.cidr.len);
  }
  if (r.dst) {
    m.dstMode[k] = r.dst.neg ? MODE_NEG : MODE_POS;
    m.dstAddr[k] = r.dst.cidr.addr >>> 0;
    m.dstMask[k] = cidrMask(r.dst.cidr.len);
  }
  m.l4[k] = r.l4Match === 'tcp' ? PROTO_TCP : r.l4Match === 'udp' ? PROTO_UDP : 0;
  if (r.sport) {
    m.spMode[k] = r.sport.neg ? MODE_NEG : MODE_POS;
    m.spLo[k] = r.sport.lo;
    m.spHi[k] = r.sport.hi;
  }
  if (r.dport) {
    m.dpMode[k] = r.dport.neg ? MODE_NEG : MODE_POS;
    m.dpLo[k] = r.dport.lo;
    m.dpHi[k] = r.dport.hi;
  }
  if (r.tcpFlags) {
    m.flMode[k] = r.tcpFlags.neg ? MODE_NEG : MODE_POS;
    m.flMask[k] = r.tcpFlags.mask;
    m.flCmp[k] = r.tcpFlags.cmp;
  }
}

/**
 * matchRuleColumnsBeforeFlags's answer when every test matched but the rule's --tcp-flags test is
 * still to be made (ruleFlagsMatch): the filter table's fast path needs to know whether a walk read
 * the flags (they vary per packet of an established session; filter.ts FilterTable.readFlags).
 */
export const RC_FLAGS = 2;

/**
 * Rule k's -s/-d/-p and tcp/udp match on the frame at `fo` in `b` (parsed into `pv`): 1 match,
 * 0 no match (a non-first fragment never matches the tcp/udp module), -1 the module's hotdrop (a
 * header too short for it) — ip_packet_match, then tcp_mt/udp_mt.
 */
export function matchRuleColumns(m: RuleColumns, k: number, pv: PacketView, b: Uint8Array, fo: number): number {
  const r = matchRuleColumnsBeforeFlags(m, k, pv, b, fo);
  if (r !== RC_FLAGS) return r;
  return ruleFlagsMatch(m, k, b, fo + pv.ihl) ? 1 : 0;
}

/** matchRuleColumns up to the --tcp-flags test: 1, 0, -1 as it, or RC_FLAGS (the flags decide). */
export function matchRuleColumnsBeforeFlags(
  m: RuleColumns,
  k: number,
  pv: PacketView,
  b: Uint8Array,
  fo: number,
): number {
  let mode = m.srcMode[k];
  if (mode !== MODE_NONE && ((pv.src & m.srcMask[k]) >>> 0 === m.srcAddr[k]) !== (mode === MODE_POS)) return 0;
  mode = m.dstMode[k];
  if (mode !== MODE_NONE && ((pv.dst & m.dstMask[k]) >>> 0 === m.dstAddr[k]) !== (mode === MODE_POS)) return 0;
  mode = m.protoMode[k];
  if (mode !== MODE_NONE && (m.proto[k] === pv.proto) !== (mode === MODE_POS)) return 0;
  const l4 = m.l4[k];
  if (l4 === 0) return 1;
  if (pv.fragOff !== 0) return 0;
  if (pv.totalLen - pv.ihl < (l4 === PROTO_TCP ? TCP_HDR : UDP_HDR)) return -1;
  const o = fo + pv.ihl;
  const sp = rd16(b, o);
  const dp = rd16(b, o + 2);
  mode = m.spMode[k];
  if (mode !== MODE_NONE && (sp >= m.spLo[k] && sp <= m.spHi[k]) !== (mode === MODE_POS)) return 0;
  mode = m.dpMode[k];
  if (mode !== MODE_NONE && (dp >= m.dpLo[k] && dp <= m.dpHi[k]) !== (mode === MODE_POS)) return 0;
  return m.flMode[k] !== MODE_NONE ? RC_FLAGS : 1;
}

/** Rule k's --tcp-flags test on the TCP header at `o` (the rule has one). */
export function ruleFlagsMatch(m: RuleColumns, k: number, b: Uint8Array, o: number): boolean {
  return ((b[o + 13] & m.flMask[k]) === m.flCmp[k]) === (m.flMode[k] === MODE_POS);
}
