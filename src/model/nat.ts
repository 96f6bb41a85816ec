// The nat table of one NAT instance: rule evaluation (ipt_do_table over the nat chains), the
// mapping choice (nf_nat_setup_info → get_unique_tuple → nf_nat_l4proto_unique_tuple), applying
// the stored manipulation (nf_nat_packet) and ICMP error translation
// (nf_nat_icmp_reply_translation). docs/semantics.md §8 and §6; LNS §2, §5.

import { ICMP_REDIRECT, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import type { PacketView } from '../packet/parse.ts';
import { verifyL4Checksum } from '../packet/checksum.ts';
import { natRangeAddress } from '../packet/jhash.ts';
import {
  NF_NAT_RANGE_MAP_IPS,
  NF_NAT_RANGE_PERSISTENT,
  NF_NAT_RANGE_PROTO_RANDOM,
  NF_NAT_RANGE_PROTO_RANDOM_FULLY,
  NF_NAT_RANGE_PROTO_SPECIFIED,
  type Cidr,
  type NatChainName,
  type NatRule,
  type NatTable,
  type NatTarget,
} from '../spec/scenario.ts';
import {
  PORT_RANGE_HIGH_MAX,
  PORT_RANGE_HIGH_MIN,
  PORT_RANGE_LOW_MAX,
  PORT_RANGE_LOW_MIN,
  PORT_RANGE_MID_MAX,
  PORT_RANGE_MID_MIN,
} from '../spec/timeouts.ts';
import { DIR_REPLY, type ConntrackTable, type CtEntry } from './conntrack.ts';
import { MANIP_DST, MANIP_SRC, natManipPkt, recomputeIcmpChecksum } from './mangle.ts';
import type { Prng } from './prng.ts';
import { copyTuple, invertTuple, tupleEqual, type Tuple } from './tuple.ts';

const RANDOM_ALL = NF_NAT_RANGE_PROTO_RANDOM | NF_NAT_RANGE_PROTO_RANDOM_FULLY;
/** NF_NAT_MAX_ATTEMPTS */
export const NAT_MAX_ATTEMPTS = 128;

/** struct nf_nat_range2 (IPv4, ports/ids as numbers). */
export interface NatRange {
  flags: number;
  minAddr: number;
  maxAddr: number;
  minProto: number;
  maxProto: number;
}

// --- rule evaluation ---------------------------------------------------------------------------

export function cidrHas(c: Cidr, a: number): boolean {
  const m = c.len === 0 ? 0 : (0xffffffff << (32 - c.len)) >>> 0;
  return (a & m) >>> 0 === c.addr;
}

/** iptables interface match: exact name, or prefix with a trailing '+'. '' = no device. */
export function ifaceHas(pattern: string, dev: string): boolean {
  if (pattern.endsWith('+')) return dev.startsWith(pattern.slice(0, -1));
  return dev === pattern;
}

/** The packet fields a rule looks at (as the packet is at the hook). */
export interface RulePacket {
  src: number;
  dst: number;
  proto: number;
  sport: number;
  dport: number;
  inDev: string;
  outDev: string;
}

export function rulePacketOf(pv: PacketView, inDev: string, outDev: string): RulePacket {
  const ports = pv.proto === PROTO_TCP || pv.proto === PROTO_UDP;
  return {
    src: pv.src,
    dst: pv.dst,
    proto: pv.proto,
    sport: ports ? pv.sport : 0,
    dport: ports ? pv.dport : 0,
    inDev,
    outDev,
  };
}

/** ipt_do_table's ip_packet_match plus the tcp/udp port matches, each with `!`. */
export function ruleMatches(r: NatRule, p: RulePacket): boolean {
  if (r.src && cidrHas(r.src.cidr, p.src) === r.src.neg) return false;
  if (r.dst && cidrHas(r.dst.cidr, p.dst) === r.dst.neg) return false;
  if (r.inIface && ifaceHas(r.inIface.name, p.inDev) === r.inIface.neg) return false;
  if (r.outIface && ifaceHas(r.outIface.name, p.outDev) === r.outIface.neg) return false;
  if (r.proto && r.proto.proto !== 0 && (r.proto.proto === p.proto) === r.proto.neg) return false;
  if (r.sport || r.dport) {
    // -m tcp / -m udp: only for that protocol (iptables requires -p tcp|udp with ports).
    if (p.proto !== PROTO_TCP && p.proto !== PROTO_UDP) return false;
    if (r.proto && r.proto.proto !== p.proto) return false;
    if (r.sport && (p.sport >= r.sport.lo && p.sport <= r.sport.hi) === r.sport.neg) return false;
    if (r.dport && (p.dport >= r.dport.lo && p.dport <= r.dport.hi) === r.dport.neg) return false;
  }
  return true;
}

export interface ChainVerdict {
  /** Index of the rule that decided (NAT target or ACCEPT), or -1 when the policy did. */
  rule: number;
  /** The NAT target to set up (MASQUERADE/SNAT/DNAT), or null (ACCEPT / policy: null binding). */
  target: NatTarget | null;
  /** Every rule (and -1 = policy) whose counter this packet increments, in order. */
  counted: number[];
}

/**
 * Walks a built-in nat chain for a connection's first packet. A matching rule's counter counts
 * (ADD_COUNTER before its target runs); NAT targets and ACCEPT end the walk; RETURN in a built-in
 * chain falls to the policy, which counts too (the underflow entry), as does running off the end.
 */
export function runChain(nat: NatTable, chain: NatChainName, p: RulePacket): ChainVerdict {
  const rules = nat.chains[chain];
  const counted: number[] = [];
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i];
    if (!ruleMatches(r, p)) continue;
    counted.push(i);
    const k = r.target.kind;
    if (k === 'RETURN') break;
    if (k === 'ACCEPT') return { rule: i, target: null, counted };
    return { rule: i, target: r.target, counted };
  }
  counted.push(-1);
  return { rule: -1, target: null, counted };
}

// --- get_unique_tuple ----------------------------------------------------------------------------

/** l4proto_in_range: ICMP by id (either manip), TCP/UDP by the manip side's port, others true. */
function l4ProtoInRange(proto: number, t: Tuple, manip: number, min: number, max: number): boolean {
  if (proto === PROTO_ICMP) return t.sport >= min && t.sport <= max;
  if (proto === PROTO_TCP || proto === PROTO_UDP) {
    const port = manip === MANIP_SRC ? t.sport : t.dport;
    return port >= min && port <= max;
  }
  return true;
}

/** nf_in_range (SRC side): address in the range when MAP_IPS, port/id in range when specified. */
function inRange(proto: number, t: Tuple, r: NatRange): boolean {
  if (r.flags & NF_NAT_RANGE_MAP_IPS && !(t.src >= r.minAddr && t.src <= r.maxAddr)) return false;
  if (!(r.flags & NF_NAT_RANGE_PROTO_SPECIFIED)) return true;
  return l4ProtoInRange(proto, t, MANIP_SRC, r.minProto, r.maxProto);
}

/** find_appropriate_src: the first (newest) bysource entry whose mapping lies in the range. */
function findAppropriateSrc(table: ConntrackTable, proto: number, t: Tuple, r: NatRange): Tuple | null {
  for (const e of table.bySource(proto, t.src, t.sport)) {
    const inv = invertTuple(proto, e.tuples[DIR_REPLY]);
    if (!inv) continue;
    const result: Tuple = { src: inv.src, sport: inv.sport, dst: t.dst, dport: t.dport };
    if (inRange(proto, result, r)) return result;
  }
  return null;
}

/**
 * find_best_ips_proto: one address → it; a range → the address jhash2 of the tuple's source picks
 * (initval: the destination, 0 with --persistent; docs/semantics.md §8).
 */
function findBestIps(t: Tuple, r: NatRange, manip: number): void {
  if (!(r.flags & NF_NAT_RANGE_MAP_IPS)) return;
  const a =
    r.minAddr === r.maxAddr
      ? r.minAddr
      : natRangeAddress(t.src, t.dst, r.minAddr, r.maxAddr, (r.flags & NF_NAT_RANGE_PERSISTENT) !== 0);
  if (manip === MANIP_SRC) t.src = a;
  else t.dst = a;
}

/** nf_nat_l4proto_unique_tuple: the bounded random search. Mutates t. */
function l4protoUniqueTuple(
  table: ConntrackTable,
  e: CtEntry,
  proto: number,
  t: Tuple,
  r: NatRange,
  manip: number,
  rng: Prng,
): void {
  let min: number;
  let rangeSize: number;
  const key: 'sport' | 'dport' = proto === PROTO_ICMP || manip === MANIP_SRC ? 'sport' : 'dport';
  if (proto === PROTO_ICMP) {
    if (!(r.flags & NF_NAT_RANGE_PROTO_SPECIFIED)) {
      min = 0;
      rangeSize = 65536;
    } else {
      min = r.minProto;
      rangeSize = r.maxProto - r.minProto + 1;
    }
  } else if (proto === PROTO_TCP || proto === PROTO_UDP) {
    if (!(r.flags & NF_NAT_RANGE_PROTO_SPECIFIED)) {
      if (manip === MANIP_DST) return; // a DST manip never changes the port without a range
      const port = t[key];
      if (port < 1024) {
        if (port < 512) {
          min = PORT_RANGE_LOW_MIN;
          rangeSize = PORT_RANGE_LOW_MAX - PORT_RANGE_LOW_MIN + 1;
        } else {
          min = PORT_RANGE_MID_MIN;
          rangeSize = PORT_RANGE_MID_MAX - PORT_RANGE_MID_MIN + 1;
        }
      } else {
        min = PORT_RANGE_HIGH_MIN;
        rangeSize = PORT_RANGE_HIGH_MAX - PORT_RANGE_HIGH_MIN + 1;
      }
    } else {
      let lo = r.minProto;
      let hi = r.maxProto;
      if (hi < lo) [lo, hi] = [hi, lo];
      min = lo;
      rangeSize = hi - lo + 1;
    }
  } else {
    return; // other protocols have nothing to search
  }
  // Start offset: random for SRC manips and random flags; DNAT without random fills lowest-first.
  let off = r.flags & RANDOM_ALL || manip !== MANIP_DST ? rng.u16() : 0;
  let attempts = Math.min(rangeSize, NAT_MAX_ATTEMPTS);
  for (;;) {
    for (let i = 0; i < attempts; i++, off = (off + 1) & 0xffff) {
      t[key] = min + (off % rangeSize);
      if (!table.isTupleUsed(proto, t, e)) return;
    }
    if (attempts >= rangeSize || attempts < 16) return; // give up: the last candidate clashes at confirm
    attempts = attempts >> 1;
    off = rng.u16();
  }
}

/** get_unique_tuple (nf_nat_core.c, newest). `orig` = invert(current reply tuple). */
export function getUniqueTuple(
  table: ConntrackTable,
  e: CtEntry,
  orig: Tuple,
  r: NatRange,
  manip: number,
  rng: Prng,
): Tuple {
  const proto = e.proto;
  // 1) SRC manip without random: keep the original if in range and free, else reuse the mapping
  //    another connection from the same source address and port already has.
  if (manip === MANIP_SRC && !(r.flags & RANDOM_ALL)) {
    if (inRange(proto, orig, r)) {
      if (!table.isTupleUsed(proto, orig, e)) return copyTuple(orig);
    } else {
      const found = findAppropriateSrc(table, proto, orig, r);
      if (found && !table.isTupleUsed(proto, found, e)) return found;
    }
  }
  // 2) the address.
  const t = copyTuple(orig);
  findBestIps(t, r, manip);
  // 3) keep the port if it is in range and unique (with a range: a single port is kept even if used).
  if (!(r.flags & RANDOM_ALL)) {
    if (r.flags & NF_NAT_RANGE_PROTO_SPECIFIED) {
      if (
        l4ProtoInRange(proto, t, manip, r.minProto, r.maxProto) &&
        (r.minProto === r.maxProto || !table.isTupleUsed(proto, t, e))
      )
        return t;
    } else if (!table.isTupleUsed(proto, t, e)) {
      return t;
    }
  }
  // 4) search.
  l4protoUniqueTuple(table, e, proto, t, r, manip, rng);
  return t;
}

/**
 * nf_nat_setup_info: choose the mapping for `manip` and alter the reply tuple. Returns the tuple
 * the packet will look like (orig direction) after this manip.
 */
export function natSetupInfo(table: ConntrackTable, e: CtEntry, r: NatRange, manip: number, rng: Prng): Tuple {
  const curr = invertTuple(e.proto, e.tuples[DIR_REPLY]);
  if (!curr) throw new Error('natSetupInfo: entry reply tuple not invertible');
  const neu = getUniqueTuple(table, e, curr, r, manip, rng);
  if (!tupleEqual(neu, curr)) {
    const reply = invertTuple(e.proto, neu);
    if (!reply) throw new Error('natSetupInfo: new tuple not invertible');
    e.tuples[DIR_REPLY] = reply; // nf_conntrack_alter_reply
    if (manip === MANIP_SRC) e.srcNat = true;
    else e.dstNat = true;
  }
  if (manip === MANIP_SRC) e.srcNatDone = true;
  else e.dstNatDone = true;
  return neu;
}

/** nf_nat_alloc_null_binding: map to the address the packet already has, no port range. */
export function nullBindingRange(e: CtEntry, manip: number): NatRange {
  const reply = e.tuples[DIR_REPLY];
  const ip = manip === MANIP_SRC ? reply.dst : reply.src;
  return { flags: NF_NAT_RANGE_MAP_IPS, minAddr: ip, maxAddr: ip, minProto: 0, maxProto: 0 };
}

/** The nf_nat_range2 a target hands to nf_nat_setup_info (MASQUERADE: the out device's address). */
export function targetRange(t: NatTarget, masqAddr: number): NatRange {
  if (t.kind === 'MASQUERADE') {
    return {
      flags: NF_NAT_RANGE_MAP_IPS | (t.flags & (NF_NAT_RANGE_PROTO_SPECIFIED | RANDOM_ALL)),
      minAddr: masqAddr,
      maxAddr: masqAddr,
      minProto: t.portLo,
      maxProto: t.portHi,
    };
  }
  return { flags: t.flags, minAddr: t.addrLo, maxAddr: t.addrHi, minProto: t.portLo, maxProto: t.portHi };
}

// --- applying the manipulation -----------------------------------------------------------------

/**
 * nf_nat_packet: at a hook of manip type `manip`, rewrite the packet if the entry has that kind of
 * manipulation for the packet's direction (reply packets undo the other side's manip).
 * Returns false if the rewrite failed (packet too short: dropped).
 */
export function natPacket(e: CtEntry, dir: number, pkt: Uint8Array, manip: number): { changed: boolean; ok: boolean } {
  const has = manip === MANIP_SRC ? (dir === DIR_REPLY ? e.dstNat : e.srcNat) : dir === DIR_REPLY ? e.srcNat : e.dstNat;
  if (!has) return { changed: false, ok: true };
  const target = invertTuple(e.proto, e.tuples[1 - dir]);
  if (!target) return { changed: false, ok: true };
  return { changed: true, ok: natManipPkt(pkt, 0, target, e.proto, manip) };
}

export const ICMP_XLATE_OK = 0;
export const ICMP_XLATE_BAD_CHECKSUM = 1;
export const ICMP_XLATE_REDIRECT = 2;
export const ICMP_XLATE_SHORT = 3;

/**
 * nf_nat_icmp_reply_translation for a RELATED ICMP error at a hook of manip type `manip`:
 * checksum verified (failure: drop), redirects only for entries without NAT, then — if the entry
 * has this manip for the error's direction — the quoted packet is rewritten as a packet of the
 * other direction (opposite manip), the ICMP checksum recomputed, and the outer address rewritten.
 */
export function icmpReplyTranslation(
  e: CtEntry,
  dir: number,
  pkt: Uint8Array,
  pv: PacketView,
  manip: number,
): { result: number; changed: boolean } {
  if (!verifyL4Checksum(pkt, pv)) return { result: ICMP_XLATE_BAD_CHECKSUM, changed: false };
  if (pkt[pv.l4Off] === ICMP_REDIRECT) {
    if (!(e.srcNatDone && e.dstNatDone)) return { result: ICMP_XLATE_REDIRECT, changed: false };
    if (e.srcNat || e.dstNat) return { result: ICMP_XLATE_REDIRECT, changed: false };
  }
  const has = manip === MANIP_SRC ? (dir === DIR_REPLY ? e.dstNat : e.srcNat) : dir === DIR_REPLY ? e.srcNat : e.dstNat;
  if (!has) return { result: ICMP_XLATE_OK, changed: false };
  const other = e.tuples[1 - dir];
  if (!natManipPkt(pkt, pv.innerOff, other, e.proto, manip === MANIP_SRC ? MANIP_DST : MANIP_SRC)) {
    return { result: ICMP_XLATE_SHORT, changed: false };
  }
  recomputeIcmpChecksum(pkt, pv.l4Off);
  const target = invertTuple(e.proto, other);
  if (!target) return { result: ICMP_XLATE_OK, changed: true };
  if (!natManipPkt(pkt, 0, target, PROTO_ICMP, manip)) return { result: ICMP_XLATE_SHORT, changed: true };
  return { result: ICMP_XLATE_OK, changed: true };
}
