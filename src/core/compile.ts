// Compiles a Scenario (src/spec/scenario.ts) into plain typed arrays the dataplane and the
// dispatcher read: route tables (longest-prefix-first arrays per table), instances, Elastic IPs,
// NAT rules per NAT instance and chain, rule counters, conntrack settings in ms. Structured-
// cloneable (no functions, no Maps), so it travels to worker threads inside CoreShared.

import { cidrMask } from '../packet/addr.ts';
import type { Scenario, NatRule, NatChainName } from '../spec/scenario.ts';
import { DEFAULT_TCP_MAX_RETRANS, NAT_CHAINS } from '../spec/scenario.ts';
import { type CompiledAwsFilters, compileAwsFilters } from './aws-filters.ts';
import { type CompiledFilter, compileFilter } from './filter.ts';
import { type CompiledMangle, compileMangle } from './tcpmss.ts';

export const RT_LOCAL = 1;
export const RT_IGW = 2;
export const RT_ENI = 3;
export const RT_BLACKHOLE = 4;
/** Route to a NAT gateway (rtInst: the gateway's index). */
export const RT_NATGW = 5;

export const TK_MASQUERADE = 1;
export const TK_SNAT = 2;
export const TK_DNAT = 3;
export const TK_ACCEPT = 4;
export const TK_RETURN = 5;

/** Evaluated chains: PREROUTING (DST manip), POSTROUTING (SRC manip), INPUT (counted only: INPUT SNAT is not modelled). */
export const CH_PRE = 0;
export const CH_POST = 1;
export const CH_IN = 2;
export const CH_COUNT = 3;

/** Match modes. */
export const MM_NONE = 0;
export const MM_POS = 1;
export const MM_NEG = 2;

// Timeout indices (ms values in CompiledScenario.tmo).
export const TO_SYN_SENT = 1;
export const TO_SYN_RECV = 2;
export const TO_ESTABLISHED = 3;
export const TO_FIN_WAIT = 4;
export const TO_CLOSE_WAIT = 5;
export const TO_LAST_ACK = 6;
export const TO_TIME_WAIT = 7;
export const TO_CLOSE = 8;
export const TO_SYN_SENT2 = 9; // uses tcpSynSent
export const TO_UNACK = 10;
export const TO_UDP = 11;
export const TO_UDP_STREAM = 12;
export const TO_ICMP = 13;
export const TO_GENERIC = 14;
/** nf_conntrack_tcp_timeout_max_retrans (TCP_CONNTRACK_RETRANS). */
export const TO_RETRANS = 15;
export const TO_COUNT = 16;

export interface CompiledScenario {
  nInst: number;
  vpcAddr: number;
  vpcMask: number;
  instPriv: Uint32Array;
  instEip: Uint32Array;
  instHasEip: Uint8Array;
  instSdc: Uint8Array;
  instFwd: Uint8Array;
  /** ICMP error rate limits (icmp-ratelimit.ts): icmp_ratemask, icmp_ratelimit (ms), icmp_msgs_per_sec, icmp_msgs_burst. */
  instIcmpMask: Int32Array;
  instIcmpRatelimit: Float64Array;
  instIcmpPerSec: Float64Array;
  instIcmpBurst: Float64Array;
  /** NAT slot of the instance (index among instances with a nat table), or -1. */
  instNat: Int32Array;
  instRt: Int32Array;
  /** 1: stopped by a timeline event (spec/timeline.ts). */
  instStopped: Uint8Array;
  natCount: number;
  natInst: Int32Array;
  rtStart: Int32Array;
  rtAddr: Uint32Array;
  rtMask: Uint32Array;
  rtKind: Uint8Array;
  rtInst: Int32Array;
  eipCount: number;
  eipAddr: Uint32Array;
  /** The instance of each Elastic IP, or -1 for a NAT gateway's (instances' EIPs come first). */
  eipInst: Int32Array;
  /** The private address each Elastic IP maps to. */
  eipPriv: Uint32Array;
  /** NAT gateway index and its address index of each Elastic IP (-1 for instances'). */
  eipGw: Int32Array;
  eipGwAddr: Int32Array;
  /** NAT gateways: route table of the subnet, addresses [gwAddrStart[g], gwAddrStart[g+1]). */
  gwCount: number;
  gwRt: Int32Array;
  gwAddrStart: Int32Array;
  gwAddrPriv: Uint32Array;
  gwLimit: Int32Array;
  gwIdleMs: Float64Array;
  /** 1: portSelection 'preserve'; 0: 'random'. */
  gwPreserve: Uint8Array;
  /** Rules of NAT slot k, chain c (CH_*): [chainStart[CH_COUNT*k+c], chainStart[CH_COUNT*k+c+1]). */
  chainStart: Int32Array;
  chainPolicy: Int32Array;
  rSrcMode: Uint8Array;
  rSrcAddr: Uint32Array;
  rSrcMask: Uint32Array;
  rDstMode: Uint8Array;
  rDstAddr: Uint32Array;
  rDstMask: Uint32Array;
  rIfOk: Uint8Array;
  rProto: Uint8Array;
  rProtoMode: Uint8Array;
  rSpMode: Uint8Array;
  rSpLo: Uint16Array;
  rSpHi: Uint16Array;
  rDpMode: Uint8Array;
  rDpLo: Uint16Array;
  rDpHi: Uint16Array;
  rKind: Uint8Array;
  rAddrLo: Uint32Array;
  rAddrHi: Uint32Array;
  rPortLo: Uint16Array;
  rPortHi: Uint16Array;
  rFlags: Uint8Array;
  rCounter: Int32Array;
  counterCount: number;
  counterInst: Int32Array;
  counterChain: Int32Array;
  counterRule: Int32Array;
  ctMax: number;
  tcpLoose: number;
  /** nf_conntrack_tcp_ignore_invalid_rst (1/0). */
  tcpIgnoreInvalidRst: number;
  /** nf_conntrack_tcp_be_liberal (1/0). */
  tcpBeLiberal: number;
  /** nf_conntrack_tcp_max_retrans. */
  tcpMaxRetrans: number;
  checksum: number;
  /** Timeouts in ms, indexed by TO_*. */
  tmo: Float64Array;
  /** Security groups and network ACLs (aws-filters.ts); null: none in the scenario. */
  aws: CompiledAwsFilters | null;
  /** The NAT instances' mangle rules (TCPMSS), per slot. */
  mangle: CompiledMangle;
  /** The NAT instances' filter tables, per slot (filter.ts). */
  filter: CompiledFilter;
}

function ifaceMatchesEth0(m: { name: string; neg: boolean } | null): number {
  if (!m) return 1;
  const n = m.name;
  const hit = n.endsWith('+') ? 'eth0'.startsWith(n.slice(0, -1)) : n === 'eth0';
  return hit !== m.neg ? 1 : 0;
}

const KIND: Record<string, number> = {
  MASQUERADE: TK_MASQUERADE,
  SNAT: TK_SNAT,
  DNAT: TK_DNAT,
  ACCEPT: TK_ACCEPT,
  RETURN: TK_RETURN,
};

/**
 * A typed array over a SharedArrayBuffer holding `src`: the state a timeline event changes (routes,
 * Elastic IPs, stopped instances) is shared with the workers, so updateTimelineState reaches them.
 */
function sharedCopy<T extends Uint8Array | Int32Array | Uint32Array>(
  C: { new (b: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number },
  src: ArrayLike<number>,
): T {
  const a = new C(new SharedArrayBuffer(Math.max(1, src.length) * C.BYTES_PER_ELEMENT));
  const v = a.length > src.length ? (a.subarray(0, src.length) as T) : a;
  v.set(src);
  return v;
}

/**
 * Writes the timeline-changeable state of `fresh` (compiled from the scenario after an event) into
 * `target` in place: route kinds and targets, Elastic IP mappings, stopped instances. Returns why
 * it cannot (a different shape), or null.
 */
export function updateTimelineState(target: CompiledScenario, fresh: CompiledScenario): string | null {
  if (
    fresh.rtKind.length !== target.rtKind.length ||
    fresh.eipCount !== target.eipCount ||
    fresh.nInst !== target.nInst
  )
    return 'the routes or Elastic IPs changed shape';
  target.rtKind.set(fresh.rtKind);
  target.rtInst.set(fresh.rtInst);
  target.rtAddr.set(fresh.rtAddr);
  target.rtMask.set(fresh.rtMask);
  target.eipAddr.set(fresh.eipAddr);
  target.eipInst.set(fresh.eipInst);
  target.eipPriv.set(fresh.eipPriv);
  target.eipGw.set(fresh.eipGw);
  target.eipGwAddr.set(fresh.eipGwAddr);
  target.instEip.set(fresh.instEip);
  target.instHasEip.set(fresh.instHasEip);
  target.instStopped.set(fresh.instStopped);
  return null;
}

export function compileScenario(s: Scenario): CompiledScenario {
  const n = s.instances.length;
  const instPriv = new Uint32Array(n);
  const instEip = sharedCopy(Uint32Array, new Uint32Array(n));
  const instHasEip = sharedCopy(Uint8Array, new Uint8Array(n));
  const instStopped = sharedCopy(
    Uint8Array,
    s.instances.map((i) => (i.stopped ? 1 : 0)),
  );
  const instSdc = new Uint8Array(n);
  const instFwd = new Uint8Array(n);
  const instIcmpMask = new Int32Array(n);
  const instIcmpRatelimit = new Float64Array(n);
  const instIcmpPerSec = new Float64Array(n);
  const instIcmpBurst = new Float64Array(n);
  const instNat = new Int32Array(n).fill(-1);
  const instRt = new Int32Array(n);
  const natInstL: number[] = [];
  const eipA: number[] = [];
  const eipI: number[] = [];
  const eipP: number[] = [];
  const eipG: number[] = [];
  const eipK: number[] = [];
  s.instances.forEach((inst, i) => {
    instPriv[i] = inst.privateIp >>> 0;
    if (inst.elasticIp !== null) {
      instEip[i] = inst.elasticIp >>> 0;
      instHasEip[i] = 1;
      eipA.push(inst.elasticIp >>> 0);
      eipI.push(i);
      eipP.push(inst.privateIp >>> 0);
      eipG.push(-1);
      eipK.push(-1);
    }
    instSdc[i] = inst.sourceDestCheck ? 1 : 0;
    instFwd[i] = inst.sysctls.ipForward ? 1 : 0;
    instIcmpMask[i] = inst.sysctls.icmpRatemask | 0;
    instIcmpRatelimit[i] = inst.sysctls.icmpRatelimit;
    instIcmpPerSec[i] = inst.sysctls.icmpMsgsPerSec;
    instIcmpBurst[i] = inst.sysctls.icmpMsgsBurst;
    instRt[i] = s.subnets[inst.subnet].routeTable;
    if (inst.nat) {
      instNat[i] = natInstL.length;
      natInstL.push(i);
    }
  });
  const gws = s.natGateways ?? [];
  const gwAddrStart: number[] = [0];
  const gwAddrPriv: number[] = [];
  gws.forEach((g, gi) => {
    g.addresses.forEach((a, k) => {
      gwAddrPriv.push(a.privateIp >>> 0);
      if (a.elasticIp !== null) {
        eipA.push(a.elasticIp >>> 0);
        eipI.push(-1);
        eipP.push(a.privateIp >>> 0);
        eipG.push(gi);
        eipK.push(k);
      }
    });
    gwAddrStart.push(gwAddrPriv.length);
  });
  // Routes: per table, longest prefix first (stable for equal lengths: first listed wins).
  const rtStart: number[] = [0];
  const rtAddr: number[] = [];
  const rtMask: number[] = [];
  const rtKind: number[] = [];
  const rtInst: number[] = [];
  for (const t of s.routeTables) {
    const routes = t.routes.map((r, k) => ({ r, k })).sort((a, b) => b.r.dest.len - a.r.dest.len || a.k - b.k);
    let hasVpc = false;
    for (const { r } of routes)
      if (r.dest.len === s.vpcCidr.len && r.dest.addr >>> 0 === s.vpcCidr.addr >>> 0) hasVpc = true;
    const all = routes.map((x) => x.r);
    if (!hasVpc) {
      all.push({ dest: { ...s.vpcCidr }, target: 'local', instance: -1 });
      all.sort((a, b) => b.dest.len - a.dest.len);
    }
    for (const r of all) {
      rtAddr.push(r.dest.addr >>> 0);
      rtMask.push(cidrMask(r.dest.len));
      rtKind.push(
        r.target === 'local'
          ? RT_LOCAL
          : r.target === 'igw'
            ? RT_IGW
            : r.target === 'eni'
              ? RT_ENI
              : r.target === 'nat-gateway'
                ? RT_NATGW
                : RT_BLACKHOLE,
      );
      rtInst.push(r.target === 'eni' || r.target === 'nat-gateway' ? r.instance : -1);
    }
    rtStart.push(rtAddr.length);
  }
  // NAT rules and counters.
  const chainStart: number[] = [];
  const chainPolicy: number[] = [];
  const rules: NatRule[] = [];
  const rCounter: number[] = [];
  const counterInst: number[] = [];
  const counterChain: number[] = [];
  const counterRule: number[] = [];
  const counterIndex = new Map<string, number>();
  for (const i of natInstL) {
    const nat = s.instances[i].nat!;
    NAT_CHAINS.forEach((c, ci) => {
      counterIndex.set(`${i}/${c}/-1`, counterInst.length);
      counterInst.push(i);
      counterChain.push(ci);
      counterRule.push(-1);
      nat.chains[c].forEach((_r, k) => {
        counterIndex.set(`${i}/${c}/${k}`, counterInst.length);
        counterInst.push(i);
        counterChain.push(ci);
        counterRule.push(k);
      });
    });
  }
  for (const i of natInstL) {
    const nat = s.instances[i].nat!;
    for (const c of ['PREROUTING', 'POSTROUTING', 'INPUT'] as NatChainName[]) {
      chainStart.push(rules.length);
      chainPolicy.push(counterIndex.get(`${i}/${c}/-1`)!);
      nat.chains[c].forEach((r, k) => {
        rules.push(r);
        rCounter.push(counterIndex.get(`${i}/${c}/${k}`)!);
      });
    }
  }
  chainStart.push(rules.length);
  const R = rules.length;
  const c: CompiledScenario = {
    nInst: n,
    vpcAddr: s.vpcCidr.addr >>> 0,
    vpcMask: cidrMask(s.vpcCidr.len),
    instPriv,
    instEip,
    instHasEip,
    instSdc,
    instFwd,
    instIcmpMask,
    instIcmpRatelimit,
    instIcmpPerSec,
    instIcmpBurst,
    instNat,
    instRt,
    instStopped,
    natCount: natInstL.length,
    natInst: Int32Array.from(natInstL),
    rtStart: Int32Array.from(rtStart),
    rtAddr: sharedCopy(Uint32Array, rtAddr),
    rtMask: sharedCopy(Uint32Array, rtMask),
    rtKind: sharedCopy(Uint8Array, rtKind),
    rtInst: sharedCopy(Int32Array, rtInst),
    eipCount: eipA.length,
    eipAddr: sharedCopy(Uint32Array, eipA),
    eipInst: sharedCopy(Int32Array, eipI),
    eipPriv: sharedCopy(Uint32Array, eipP),
    eipGw: sharedCopy(Int32Array, eipG),
    eipGwAddr: sharedCopy(Int32Array, eipK),
    gwCount: gws.length,
    gwRt: Int32Array.from(gws.map((g) => s.subnets[g.subnet].routeTable)),
    gwAddrStart: Int32Array.from(gwAddrStart),
    gwAddrPriv: Uint32Array.from(gwAddrPriv),
    gwLimit: Int32Array.from(gws.map((g) => g.connectionLimit)),
    gwIdleMs: Float64Array.from(gws.map((g) => g.idleTimeout * 1000)),
    gwPreserve: Uint8Array.from(gws.map((g) => (g.portSelection === 'preserve' ? 1 : 0))),
    chainStart: Int32Array.from(chainStart),
    chainPolicy: Int32Array.from(chainPolicy),
    rSrcMode: new Uint8Array(R),
    rSrcAddr: new Uint32Array(R),
    rSrcMask: new Uint32Array(R),
    rDstMode: new Uint8Array(R),
    rDstAddr: new Uint32Array(R),
    rDstMask: new Uint32Array(R),
    rIfOk: new Uint8Array(R),
    rProto: new Uint8Array(R),
    rProtoMode: new Uint8Array(R),
    rSpMode: new Uint8Array(R),
    rSpLo: new Uint16Array(R),
    rSpHi: new Uint16Array(R),
    rDpMode: new Uint8Array(R),
    rDpLo: new Uint16Array(R),
    rDpHi: new Uint16Array(R),
    rKind: new Uint8Array(R),
    rAddrLo: new Uint32Array(R),
    rAddrHi: new Uint32Array(R),
    rPortLo: new Uint16Array(R),
    rPortHi: new Uint16Array(R),
    rFlags: new Uint8Array(R),
    rCounter: Int32Array.from(rCounter),
    counterCount: counterInst.length,
    counterInst: Int32Array.from(counterInst),
    counterChain: Int32Array.from(counterChain),
    counterRule: Int32Array.from(counterRule),
    ctMax: s.conntrack.max,
    tcpLoose: s.conntrack.tcpLoose ? 1 : 0,
    tcpIgnoreInvalidRst: s.conntrack.tcpIgnoreInvalidRst ? 1 : 0,
    tcpBeLiberal: s.conntrack.tcpBeLiberal ? 1 : 0,
    tcpMaxRetrans: s.conntrack.tcpMaxRetrans ?? DEFAULT_TCP_MAX_RETRANS,
    checksum: s.conntrack.checksum ? 1 : 0,
    tmo: new Float64Array(TO_COUNT),
    aws: compileAwsFilters(s),
    mangle: compileMangle(s, natInstL),
    filter: compileFilter(s, natInstL),
  };
  rules.forEach((r, k) => {
    if (r.src) {
      c.rSrcMode[k] = r.src.neg ? MM_NEG : MM_POS;
      c.rSrcAddr[k] = r.src.cidr.addr >>> 0;
      c.rSrcMask[k] = cidrMask(r.src.cidr.len);
    }
    if (r.dst) {
      c.rDstMode[k] = r.dst.neg ? MM_NEG : MM_POS;
      c.rDstAddr[k] = r.dst.cidr.addr >>> 0;
      c.rDstMask[k] = cidrMask(r.dst.cidr.len);
    }
    c.rIfOk[k] = ifaceMatchesEth0(r.inIface) & ifaceMatchesEth0(r.outIface);
    if (r.proto && r.proto.proto !== 0) {
      c.rProto[k] = r.proto.proto;
      c.rProtoMode[k] = r.proto.neg ? MM_NEG : MM_POS;
    }
    if (r.proto && r.proto.proto === 0 && r.proto.neg) {
      c.rProtoMode[k] = MM_NEG;
      c.rProto[k] = 0;
    }
    if (r.sport) {
      c.rSpMode[k] = r.sport.neg ? MM_NEG : MM_POS;
      c.rSpLo[k] = r.sport.lo;
      c.rSpHi[k] = r.sport.hi;
    }
    if (r.dport) {
      c.rDpMode[k] = r.dport.neg ? MM_NEG : MM_POS;
      c.rDpLo[k] = r.dport.lo;
      c.rDpHi[k] = r.dport.hi;
    }
    c.rKind[k] = KIND[r.target.kind] ?? TK_ACCEPT;
    c.rAddrLo[k] = r.target.addrLo >>> 0;
    c.rAddrHi[k] = r.target.addrHi >>> 0;
    c.rPortLo[k] = r.target.portLo;
    c.rPortHi[k] = r.target.portHi;
    c.rFlags[k] = r.target.flags;
  });
  const t = s.conntrack.timeouts;
  c.tmo[TO_SYN_SENT] = t.tcpSynSent * 1000;
  c.tmo[TO_SYN_RECV] = t.tcpSynRecv * 1000;
  c.tmo[TO_ESTABLISHED] = t.tcpEstablished * 1000;
  c.tmo[TO_FIN_WAIT] = t.tcpFinWait * 1000;
  c.tmo[TO_CLOSE_WAIT] = t.tcpCloseWait * 1000;
  c.tmo[TO_LAST_ACK] = t.tcpLastAck * 1000;
  c.tmo[TO_TIME_WAIT] = t.tcpTimeWait * 1000;
  c.tmo[TO_CLOSE] = t.tcpClose * 1000;
  c.tmo[TO_SYN_SENT2] = t.tcpSynSent * 1000;
  c.tmo[TO_UNACK] = t.tcpUnacknowledged * 1000;
  c.tmo[TO_UDP] = t.udp * 1000;
  c.tmo[TO_UDP_STREAM] = t.udpStream * 1000;
  c.tmo[TO_ICMP] = t.icmp * 1000;
  c.tmo[TO_GENERIC] = t.generic * 1000;
  c.tmo[TO_RETRANS] = t.tcpMaxRetrans * 1000;
  return c;
}

/** Longest-prefix match in route table `rt`: the route index, or -1. */
export function routeLookup(c: CompiledScenario, rt: number, dst: number): number {
  for (let i = c.rtStart[rt], e = c.rtStart[rt + 1]; i < e; i++) {
    if ((dst & c.rtMask[i]) >>> 0 === c.rtAddr[i]) return i;
  }
  return -1;
}

/** Instance whose private IP is `addr`, or -1. */
export function instanceByPrivate(c: CompiledScenario, addr: number): number {
  for (let i = 0; i < c.nInst; i++) if (c.instPriv[i] === addr) return i;
  return -1;
}

/** Index into eipAddr of Elastic IP `addr`, or -1. */
export function eipIndex(c: CompiledScenario, addr: number): number {
  for (let i = 0; i < c.eipCount; i++) if (c.eipAddr[i] === addr) return i;
  return -1;
}

/** Index into eipAddr of the EIP mapped to private address `addr`, or -1. */
export function eipOfPrivate(c: CompiledScenario, addr: number): number {
  for (let i = 0; i < c.eipCount; i++) if (c.eipPriv[i] === addr) return i;
  return -1;
}

/** NAT gateway with private address `addr` (address index in gwAddrHit), or -1. */
export function gatewayByPrivate(c: CompiledScenario, addr: number): number {
  for (let g = 0; g < c.gwCount; g++)
    for (let k = c.gwAddrStart[g], e = c.gwAddrStart[g + 1]; k < e; k++) if (c.gwAddrPriv[k] === addr) return g;
  return -1;
}

/** Address index (0-based within gateway g) of private address `addr`, or -1. */
export function gatewayAddrIndex(c: CompiledScenario, g: number, addr: number): number {
  const b = c.gwAddrStart[g];
  for (let k = b, e = c.gwAddrStart[g + 1]; k < e; k++) if (c.gwAddrPriv[k] === addr) return k - b;
  return -1;
}

/**
 * First rule of chain `ch` of NAT slot `slot` that matches, or -1 (policy). Ports are ignored for
 * protocols other than TCP/UDP (a rule with a port match then does not match).
 */
export function ruleMatch(
  c: CompiledScenario,
  slot: number,
  ch: number,
  proto: number,
  src: number,
  dst: number,
  sport: number,
  dport: number,
): number {
  const ci = slot * CH_COUNT + ch;
  for (let k = c.chainStart[ci], e = c.chainStart[ci + 1]; k < e; k++) {
    if (c.rIfOk[k] === 0) continue;
    let m = c.rSrcMode[k];
    if (m !== MM_NONE && ((src & c.rSrcMask[k]) >>> 0 === c.rSrcAddr[k]) !== (m === MM_POS)) continue;
    m = c.rDstMode[k];
    if (m !== MM_NONE && ((dst & c.rDstMask[k]) >>> 0 === c.rDstAddr[k]) !== (m === MM_POS)) continue;
    m = c.rProtoMode[k];
    if (m !== MM_NONE && (c.rProto[k] === 0 || c.rProto[k] === proto) !== (m === MM_POS)) continue;
    const ported = proto === 6 || proto === 17;
    m = c.rSpMode[k];
    if (m !== MM_NONE && (!ported || (sport >= c.rSpLo[k] && sport <= c.rSpHi[k]) !== (m === MM_POS))) continue;
    m = c.rDpMode[k];
    if (m !== MM_NONE && (!ported || (dport >= c.rDpLo[k] && dport <= c.rDpHi[k]) !== (m === MM_POS))) continue;
    return k;
  }
  return -1;
}
