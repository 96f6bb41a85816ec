// The documented differences of the kernel engine (docs/kernel-differences.md), each recognised by
// a rule, so that a comparison (fuzz campaign, replay) counts them under their name and stops
// only for what no rule explains. A rule looks at one packet's differences (its input, both
// results) or at the end-of-run table differences; it never looks at message text for anything
// but the conntrack entry a table difference is about.
import type { DifferenceClass, DifferenceFacts, InputPacket, PacketResult } from '../spec/engine.ts';
import type { Scenario } from '../spec/scenario.ts';
import {
  CT_INVALID,
  CT_NEW,
  DROP_KERNEL_UNSEEN,
  DROP_NACL_DENY,
  DROP_ROUTING_LOOP,
  DROP_SG_ALLOWANCE,
  DROP_SG_DENY,
  DROP_TTL_EXCEEDED,
  FATE_DELIVERED,
} from '../spec/reasons.ts';
import {
  F_ACK,
  F_FIN,
  F_RST,
  F_SYN,
  ICMP_DEST_UNREACH,
  ICMP_FRAG_NEEDED,
  ICMP_REDIRECT,
  ICMP_TIME_EXCEEDED,
  isIcmpErrorFrame,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
} from '../packet/constants.ts';
import { parseIpv4Addr } from '../packet/index.ts';
import { rd32 } from '../packet/bytes.ts';
import { EVIDENCE_ICMP_RL_GLOBAL, EVIDENCE_ICMP_RL_HOST, LINK_MTU } from './topology.ts';

/** What a rule may know about the kernel run besides the facts. */
export interface KernelRunFacts {
  scenario: Scenario;
  /** The kernel engine's name in `facts.engines`. */
  name: string;
  /** Lag behind the virtual clock per packet index, ms. */
  lagMs: readonly number[];
  maxLagMs: number;
  /** Per scenario instance: TCP segments the kernel delivered to its own stack (K3). */
  localTcpDeliveries?: readonly number[];
  /** K3: flows (sgFlowKey) with a TCP segment the kernel delivered to an instance's own stack. */
  localTcpFlows?: ReadonlySet<string>;
  /**
   * E11: flows (sgFlowKey of an input or output) with a segment a security-group namespace's
   * conntrack called INVALID so far in the run, and how many such segments there were.
   */
  sgInvalidFlows?: ReadonlySet<string>;
  sgInvalidSegments?: number;
  /** E11: packets classified E11 that the kernel dropped and the other engine delivered. */
  sgInvalidDrops?: number;
  /**
   * E11/E16: flows (sgFlowKey) of packets the other engine refused at a security group's allowance
   * and the kernel's ENI tracked, with the class that explained it ('E11' or 'E16').
   */
  sgAllowanceFlowClass?: ReadonlyMap<string, string>;
  /** E16: flows of packets classified E16. */
  sgAllowanceFlows?: ReadonlySet<string>;
  /** E16/E17: TCP flows (sgFlowKey) with a FIN or RST sent or received by an ENI with security groups so far in the run. */
  sgClosedFlows?: ReadonlySet<string>;
  /** E17: flows of packets classified E17 (their later packets differ the same way). */
  sgReopenedFlows?: ReadonlySet<string>;
  /**
   * E11/E16: packets the other engine dropped at a security group's allowance and the kernel's ENI
   * let through (each may be counted in a NAT instance's nat chains only in the kernel).
   */
  sgAllowancePassed?: number;
  /** TTL 0 inputs the kernel never showed an instance (E5): their count and IP total lengths. */
  unseenTtl0?: { readonly packets: number; readonly bytes: number };
  /** E5: the flows (sgFlowKey) of those inputs — the contract's conntrack saw them, the kernel's did not. */
  unseenTtl0Flows?: ReadonlySet<string>;
  /**
   * K9: the forwarding passes a routing loop the contract stopped after 8 hops can have cost the
   * kernel at most — each such packet's input TTL, and that many times its IP total length.
   */
  routingLoopPasses?: { readonly packets: number; readonly bytes: number };
  /**
   * K6: first fragments (offset 0, MF) addressed to an instance itself the kernel dropped: each
   * may, 30 s later, make that instance send an ICMP "fragment reassembly time exceeded" — their
   * count, and the bytes those errors would have (28 + the fragment, at most 576: icmp_send() quotes what fits).
   */
  reassemblyExpiries?: { readonly packets: number; readonly bytes: number };
  /** K5: the ICMP redirects the kernel's instances sent for packets classified K5, and their bytes. */
  redirectsSent?: { readonly packets: number; readonly bytes: number };
  /**
   * K2: the ICMP errors of packets classified K2 that the kernel sent and the contract's rate limit
   * refused (`kernel`), and those the other engine sent and the kernel's refused (`other`).
   */
  rateLimitSurplus?: {
    readonly kernel: { readonly packets: number; readonly bytes: number };
    readonly other: { readonly packets: number; readonly bytes: number };
  };
}

/**
 * The direction-less key of a TCP/UDP frame's flow ("6 a:p b:q", endpoints sorted), or null: a
 * packet and its reply have the same key.
 */
export function sgFlowKey(frame: Uint8Array): string | null {
  if (frame.length < 20 || (frame[9] !== PROTO_TCP && frame[9] !== PROTO_UDP)) return null;
  const l4 = (frame[0] & 15) * 4;
  if (frame.length < l4 + 4 || (((frame[6] << 8) | frame[7]) & 0x1fff) !== 0) return null;
  const ip = (o: number) => `${frame[o]}.${frame[o + 1]}.${frame[o + 2]}.${frame[o + 3]}`;
  const a = `${ip(12)}:${(frame[l4] << 8) | frame[l4 + 1]}`;
  const b = `${ip(16)}:${(frame[l4 + 2] << 8) | frame[l4 + 3]}`;
  return `${frame[9]} ${a < b ? `${a} ${b}` : `${b} ${a}`}`;
}

export interface DifferenceRule {
  /** The id in docs/kernel-differences.md ('K3', 'E5', ...) or 'lagged'. */
  id: string;
  title: string;
  /** Why this difference is of the class, or null. */
  match(f: DifferenceFacts, k: KernelRunFacts): string | null;
}

/** The class id of packets compared while the kernel was behind the virtual clock by more than a timeout. */
export const CLASS_KERNEL_LAGGED = 'lagged';

interface Sides {
  kin: InputPacket;
  kr: PacketResult;
  or: PacketResult;
}

function sides(f: DifferenceFacts, k: KernelRunFacts): Sides | null {
  if (!f.inputs || !f.results) return null;
  if (f.engines[0] === k.name) return { kin: f.inputs[0], kr: f.results[0], or: f.results[1] };
  if (f.engines[1] === k.name) return { kin: f.inputs[1], kr: f.results[1], or: f.results[0] };
  return null;
}

const kinds = (f: DifferenceFacts): Set<string> => new Set(f.differences.map((d) => d.kind));
const onlyKinds = (f: DifferenceFacts, allowed: readonly string[]): boolean =>
  [...kinds(f)].every((x) => allowed.includes(x));

function ihl(b: Uint8Array): number {
  return (b[0] & 15) << 2;
}

function isIcmpError(b: Uint8Array): boolean {
  return b.length >= 28 && isIcmpErrorFrame(b);
}

/** Martian sources the router namespace drops: 0/8, 127/8, multicast and above. */
function isMartianSource(a: number): boolean {
  const top = a >>> 24;
  return top === 0 || top === 127 || top >= 224;
}

/** Martian destinations the contract still carries: 0/8, 127/8, 240/4 (multicast and limited broadcast it drops itself, DROP_MULTICAST). */
function isMartianDestination(a: number): boolean {
  const top = a >>> 24;
  return top === 0 || top === 127 || top >= 240;
}

/** Addresses of instances whose own stack answers what reaches them (private IPs and their Elastic IPs). */
export function instanceOwnAddresses(s: Scenario): Set<number> {
  const out = new Set<number>();
  for (const inst of s.instances) {
    out.add(inst.privateIp >>> 0);
    if (inst.elasticIp !== null) out.add(inst.elasticIp >>> 0);
  }
  return out;
}

/** The shortest conntrack timeout (s) that decides the packet's outcome, by protocol. */
function shortestTimeoutS(s: Scenario, proto: number): number {
  const t = s.conntrack.timeouts;
  if (proto === PROTO_UDP) return Math.min(t.udp, t.udpStream, 2);
  if (proto === PROTO_ICMP) return t.icmp;
  if (proto === PROTO_TCP)
    return Math.min(
      t.tcpSynSent,
      t.tcpSynRecv,
      t.tcpEstablished,
      t.tcpFinWait,
      t.tcpCloseWait,
      t.tcpLastAck,
      t.tcpTimeWait,
      t.tcpClose,
    );
  return t.generic;
}

function allTimeoutsMinS(s: Scenario): number {
  return Math.min(
    shortestTimeoutS(s, PROTO_UDP),
    shortestTimeoutS(s, PROTO_ICMP),
    shortestTimeoutS(s, PROTO_TCP),
    s.conntrack.timeouts.generic,
  );
}

/** Tolerance on conntrack timeouts (s): the measured lag, plus 1 s of `conntrack -L` truncation. */
export function timeoutToleranceS(maxLagMs: number): number {
  return Math.ceil(maxLagMs / 1000) + 1;
}

/**
 * An end-of-run difference "only <engine> has <conntrack line>" (compare.ts); group 1: the entry's
 * timeout (the number after the protocol number, as `conntrack -L` prints it).
 */
const ONLY_ONE_HAS = /: only \S+ has [a-z]+\s+\d+ (\d+) /;

/**
 * The flow key (conntrackFlowKey) of an end-of-run entry that only one side lists — the kernel
 * engine (`side` 'kernel') or the other engine ('other') — or null for any other difference.
 */
function onlyEntryFlow(
  d: { kind: string; message: string },
  k: KernelRunFacts,
  side: 'kernel' | 'other',
): string | null {
  if (d.kind !== 'conntrack' || !ONLY_ONE_HAS.test(d.message)) return null;
  if (new RegExp(`: only ${k.name} has `).test(d.message) !== (side === 'kernel')) return null;
  return conntrackFlowKey(d.message);
}

/** The direction-less flow key (as sgFlowKey) of the TCP/UDP conntrack entry a table difference is about, or null. */
function conntrackFlowKey(message: string): string | null {
  const m = /\b(tcp|udp)\s+(\d+)\s.*?\bsrc=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/.exec(message);
  if (!m) return null;
  const a = `${m[3]}:${m[5]}`;
  const b = `${m[4]}:${m[6]}`;
  return `${m[2]} ${a < b ? `${a} ${b}` : `${b} ${a}`}`;
}

/** The conntrack entry a table difference is about: its original-direction destination. */
function tableEntryDst(message: string): number | null {
  const m = /\bdst=(\d+\.\d+\.\d+\.\d+)/.exec(message);
  return m ? parseIpv4Addr(m[1]) >>> 0 : null;
}

/** Both tuples of a TCP/UDP entry in an end-of-run "only <engine> has <conntrack line>" message. */
const ONLY_ENTRY =
  /: only (\S+) has (tcp|udp)\s+(\d+)\s.*?\bsrc=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)\b.*?\bsrc=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/;

/**
 * K3's consequence at the end of a run (campaign seed 991002 run 83): the contract keeps the entry
 * of a flow to an instance's own address whose first reply, the stack's RST, made Linux delete it;
 * a later connection NATed to that instance's address with the same ports then clashes in the
 * contract (another port is chosen) and not in the kernel. Such a difference is one of a pair:
 * "only <kernel> has" and "only <other> has" an entry with the same original tuple and reply
 * source, the reply's destination an instance's own address, the tuples differing only in the
 * reply's destination port, and the kernel's reply tuple a flow the kernel delivered a TCP segment
 * of to that instance's stack (localTcpFlows). The partner is looked for among every end-of-run
 * difference of the comparison (facts.tableDifferences). Returns the indices (in
 * facts.differences) of the differences that are such a pair's halves.
 */
function k3RenamedEntries(f: DifferenceFacts, k: KernelRunFacts, own: ReadonlySet<number>): Set<number> {
  const out = new Set<number>();
  const parse = (d: { kind: string; message: string }) => (d.kind === 'conntrack' ? ONLY_ENTRY.exec(d.message) : null);
  const all = (f.tableDifferences ?? f.differences).map(parse);
  /** The kernel's half of a pair satisfies the K3 conditions. */
  const kernelHalf = (e: RegExpExecArray): boolean => {
    const [, , , proto, , , , , rsrc, rdst, rsport, rdport] = e;
    if (!own.has(parseIpv4Addr(rdst) >>> 0)) return false;
    const a = `${rsrc}:${rsport}`;
    const b = `${rdst}:${rdport}`;
    return k.localTcpFlows?.has(`${proto} ${a < b ? `${a} ${b}` : `${b} ${a}`}`) === true;
  };
  /** Same connection (original tuple, reply source and address), another reply port. */
  const partners = (x: RegExpExecArray, y: RegExpExecArray): boolean =>
    [3, 4, 5, 6, 7, 8, 9, 10].every((g) => x[g] === y[g]) && x[11] !== y[11];
  f.differences.forEach((d, i) => {
    const e = parse(d);
    if (!e) return;
    const mine = e[1] === k.name;
    const ok = all.some((o) => o !== null && (o[1] === k.name) !== mine && partners(e, o) && kernelHalf(mine ? e : o));
    if (ok) out.add(i);
  });
  return out;
}

/**
 * K3 in the nat counters: each entry of a flow to an instance's own address that its stack's RST
 * closed is created again by the flow's next packet, and the nat table sees every new entry — so
 * the kernel counts more packets in that instance's nat PREROUTING and INPUT (policy or rule) than
 * the contract, never more than the TCP segments it delivered to that instance's stack; in its
 * filter INPUT chain, more or fewer by at most as many. The excess, or null when the counter
 * difference is not of that shape.
 */
function k3CounterExcess(message: string, k: KernelRunFacts): number | null {
  const c = kernelCounter(message, k);
  if (!c || (c.chain !== 'PREROUTING' && c.chain !== 'INPUT')) return null;
  const filter = c.table === 'filter';
  if (filter && c.chain !== 'INPUT') return null;
  const excess = c.kp - c.op;
  const delivered = k.localTcpDeliveries?.[c.instance] ?? 0;
  if (delivered === 0) return null;
  // The instance's filter INPUT rules see those segments classified otherwise (NEW in the kernel
  // where the contract says INVALID or ESTABLISHED): a rule matching on the state counts more on
  // either side, at most the segments delivered (campaign seed 995016 run 32: `--ctstate INVALID`).
  if (filter) return Math.abs(excess) <= delivered ? excess : null;
  return excess > 0 && excess <= delivered ? excess : null;
}

/** A nat or filter counter difference, read with the kernel's figures first. */
interface KernelCounter {
  table: string;
  instance: number;
  chain: string;
  /** The kernel's packets and bytes, and the other engine's. */
  kp: number;
  kb: number;
  op: number;
  ob: number;
}

/** The figures of a counter difference ("nat|filter counters instance N CHAIN rule R: A p pkts/b bytes vs B ..."), or null. */
function kernelCounter(message: string, k: KernelRunFacts): KernelCounter | null {
  const m =
    /^(nat|filter) counters instance (\d+) (\S+) rule -?\d+: (\S+) (\d+) pkts\/(\d+) bytes vs (\S+) (\d+)\/(\d+)/.exec(
      message,
    );
  if (!m) return null;
  const [, table, instance, chain, nameA, pa, ba, nameB, pb, bb] = m;
  if (nameA !== k.name && nameB !== k.name) return null;
  const [kp, kb, op, ob] = nameA === k.name ? [+pa, +ba, +pb, +bb] : [+pb, +bb, +pa, +ba];
  return { table, instance: +instance, chain, kp, kb, op, ob };
}

/** Counts a budget of packets and bytes explains: in a counter, at most that many more on one side. */
type CountBudget = { readonly packets: number; readonly bytes: number };
const kernelMoreWithin = (c: KernelCounter, b: CountBudget): boolean =>
  c.kp > c.op && c.kp - c.op <= b.packets && c.kb >= c.ob && c.kb - c.ob <= b.bytes;
const otherMoreWithin = (c: KernelCounter, b: CountBudget): boolean =>
  c.op > c.kp && c.op - c.kp <= b.packets && c.ob >= c.kb && c.ob - c.kb <= b.bytes;

/**
 * Packets the kernel counted more (negative: fewer) than the other engine in a nat or filter
 * counter difference, or null. (A packet the kernel's ENI let through past the contract's
 * allowance — E11/E16 — is counted in the instance's filter chains as in its nat chains.)
 */
function counterExcess(message: string, k: KernelRunFacts): number | null {
  const c = kernelCounter(message, k);
  return c ? c.kp - c.op : null;
}

/**
 * E5 in the nat and filter counters: the TTL 0 inputs the router namespace dropped never reached an
 * instance, so every nat or filter chain and rule the contract counted them in (a filter INPUT
 * policy drop, campaign seed 994002 run 206) shows more on the other side — never more than their
 * number and bytes; and the conntrack entries they made exist on the other side only. True when
 * every difference is such a counter excess or entry.
 */
function e5CounterExcess(f: DifferenceFacts, k: KernelRunFacts): boolean {
  const unseen = k.unseenTtl0;
  if (!unseen || unseen.packets === 0 || f.differences.length === 0) return false;
  return f.differences.every((d) => {
    // The entry such an input made, in the contract's table only (campaign seed 995013 run 8).
    if (d.kind === 'conntrack') {
      const key = onlyEntryFlow(d, k, 'other');
      return key !== null && k.unseenTtl0Flows?.has(key) === true;
    }
    const c = d.kind === 'counters' ? kernelCounter(d.message, k) : null;
    return c !== null && otherMoreWithin(c, unseen);
  });
}

/**
 * K9 in the filter counters: a routing loop the contract stops after 8 instance hops goes on in
 * the kernel until the TTL runs out, so every filter chain and rule the loop passes counts more
 * in the kernel — never more than the loops' passes (their input TTLs) and bytes (campaign seed
 * 995001 run 65: nat0's FORWARD policy, 8 passes in the contract, 63 in the kernel). The nat
 * chains see a connection's first packet only, once on either side. True when every difference
 * is such a counter excess.
 */
function k9CounterExcess(f: DifferenceFacts, k: KernelRunFacts): boolean {
  const loops = k.routingLoopPasses;
  if (!loops || loops.packets === 0 || f.differences.length === 0) return false;
  return f.differences.every((d) => {
    const c = d.kind === 'counters' ? kernelCounter(d.message, k) : null;
    return c !== null && c.table === 'filter' && kernelMoreWithin(c, loops);
  });
}

/**
 * Filter counters of packets an instance's own stack sent in the kernel only: every difference an
 * excess of the kernel's in an OUTPUT (or user) chain — not INPUT or FORWARD — at most `budget`'s
 * packets and bytes. K5: the ICMP redirects of its classified packets (campaign seed 995012 run 71:
 * nat0's filter OUTPUT policy, 1 packet of 68 bytes). K6: a first fragment addressed to an instance
 * itself, held for reassembly that never completes, makes the instance send ICMP time exceeded
 * ("fragment reassembly time exceeded") when its queue expires (ip_expire(), ipfrag_time = 30 s;
 * only for a datagram to the host itself, RTN_LOCAL; campaign seed 995011 run 9: 1 packet of 56 bytes).
 */
function ownOutputExcess(f: DifferenceFacts, k: KernelRunFacts, budget: CountBudget | undefined): boolean {
  if (!budget || budget.packets === 0 || f.differences.length === 0) return false;
  return f.differences.every((d) => {
    const c = d.kind === 'counters' ? kernelCounter(d.message, k) : null;
    return (
      c !== null && c.table === 'filter' && c.chain !== 'INPUT' && c.chain !== 'FORWARD' && kernelMoreWithin(c, budget)
    );
  });
}

/**
 * K2 in the filter counters: an ICMP error one side's rate limit let through and the other's
 * refused went through its instance's OUTPUT chain on that side only — every difference an excess
 * in an OUTPUT (or user) chain, the kernel's at most its surplus of such errors, the other
 * engine's at most its own (CI campaign seed 2084382238 run 50: a TCP SYN burst with TTL 1, the
 * kernel's random global credit let one more time exceeded through; nat0's filter OUTPUT policy,
 * 2 packets of 68 bytes vs 1).
 */
function k2CounterExcess(f: DifferenceFacts, k: KernelRunFacts): boolean {
  const surplus = k.rateLimitSurplus;
  if (!surplus || surplus.kernel.packets + surplus.other.packets === 0 || f.differences.length === 0) return false;
  return f.differences.every((d) => {
    const c = d.kind === 'counters' ? kernelCounter(d.message, k) : null;
    return (
      c !== null &&
      c.table === 'filter' &&
      c.chain !== 'INPUT' &&
      c.chain !== 'FORWARD' &&
      (kernelMoreWithin(c, surplus.kernel) || otherMoreWithin(c, surplus.other))
    );
  });
}

export const KERNEL_DIFFERENCE_RULES: readonly DifferenceRule[] = [
  {
    id: 'E8',
    title: 'conntrack timeouts count down in real seconds (compared within the measured lag + 1 s)',
    match(f, k) {
      if (f.index !== -1 || f.differences.length === 0) return null;
      const tol = timeoutToleranceS(k.maxLagMs);
      let expiredWithin = 0;
      for (const d of f.differences) {
        if (d.kind !== 'conntrack') return null;
        const m = /: timeout (\d+) vs (\d+)$/.exec(d.message);
        if (m) {
          if (Math.abs(Number(m[1]) - Number(m[2])) > tol) return null;
          continue;
        }
        // An entry one engine still lists with at most the tolerance left, which the other has
        // already expired: the same countdown, read on either side of its end.
        const only = ONLY_ONE_HAS.exec(d.message);
        if (!only || Number(only[1]) > tol) return null;
        expiredWithin++;
      }
      return (
        `timeouts within ${tol} s (kernel lag ${Math.round(k.maxLagMs)} ms + 1 s of conntrack -L rounding)` +
        (expiredWithin
          ? `; ${expiredWithin} entr${expiredWithin === 1 ? 'y' : 'ies'} expired on one side within it`
          : '')
      );
    },
  },
  {
    id: CLASS_KERNEL_LAGGED,
    title: 'kernel lagged: behind the virtual clock by more than a timeout the comparison depends on',
    match(f, k) {
      if (f.index === -1) {
        const min = allTimeoutsMinS(k.scenario);
        return k.maxLagMs > min * 1000
          ? `the kernel was up to ${Math.round(k.maxLagMs)} ms behind, more than the ${min} s timeout`
          : null;
      }
      const s = sides(f, k);
      if (!s) return null;
      const lag = k.lagMs[f.index] ?? 0;
      const proto = s.kin.frame.length >= 20 ? s.kin.frame[9] : -1;
      const min = shortestTimeoutS(k.scenario, proto);
      return lag > min * 1000
        ? `the kernel was ${Math.round(lag)} ms behind at this packet, more than the ${min} s timeout it depends on`
        : null;
    },
  },
  {
    id: 'E4',
    title: "frames larger than the links' MTU (9001) cannot be injected",
    match(f, k) {
      const s = sides(f, k);
      return s && s.kin.frame.length > LINK_MTU && s.kr.reason === DROP_KERNEL_UNSEEN
        ? `a ${s.kin.frame.length}-byte frame`
        : null;
    },
  },
  {
    id: 'E5',
    title: 'TTL 0 inputs die in the router namespace',
    match(f, k) {
      if (f.index === -1)
        return e5CounterExcess(f, k)
          ? `nat counts of ${k.unseenTtl0?.packets} TTL 0 input(s) no instance saw (at most their packets and bytes)`
          : null;
      const s = sides(f, k);
      if (!s || s.kin.frame.length < 20) return null;
      if (s.kin.frame[8] === 0 && s.kr.reason === DROP_KERNEL_UNSEEN && s.kr.outputs.length === 0) return 'input TTL 0';
      // A later packet of such an input's flow, only its classification differing: the entry the
      // TTL 0 input made exists in the contract only (campaign seed 995013 run 8: nat0's source
      // quench about it RELATED in the contract, INVALID in the kernel, whose old entry had expired).
      const flows = k.unseenTtl0Flows;
      if (!flows || flows.size === 0 || !onlyKinds(f, ['ct'])) return null;
      const b = s.kin.frame;
      const key = isIcmpErrorFrame(b) ? sgFlowKey(b.subarray(ihl(b) + 8)) : sgFlowKey(b);
      return key !== null && flows.has(key)
        ? 'a packet of a flow whose entry the contract made from a TTL 0 input no instance saw'
        : null;
    },
  },
  {
    id: 'E6',
    title: 'martian sources/destinations are dropped by the router namespace',
    match(f, k) {
      const s = sides(f, k);
      if (!s || s.kin.frame.length < 20 || s.kr.reason !== DROP_KERNEL_UNSEEN) return null;
      const src = rd32(s.kin.frame, 12);
      const dst = rd32(s.kin.frame, 16);
      return isMartianSource(src) || isMartianDestination(dst) ? 'martian address' : null;
    },
  },
  {
    id: 'K9',
    title: 'a routing loop through an instance ends when the TTL runs out (time exceeded), not after 8 hops',
    match(f, k) {
      if (f.index === -1)
        return k9CounterExcess(f, k)
          ? `filter counts of ${k.routingLoopPasses?.packets} forwarding pass(es) of routing loops Linux ran until the TTL expired (at most their TTLs and bytes)`
          : null;
      const s = sides(f, k);
      if (!s || s.or.reason !== DROP_ROUTING_LOOP || s.kr.reason !== DROP_TTL_EXCEEDED) return null;
      if (!onlyKinds(f, ['reason', 'output-count', 'egress', 'frame', 'fate'])) return null;
      // Time exceeded at the end of the loop; and ICMP redirects (K5) an instance with
      // send_redirects on sent the on-link sender on the way (campaign seed 990025 run 93).
      const types = s.kr.outputs.map((o) => (isIcmpErrorFrame(o.frame) ? o.frame[(o.frame[0] & 15) << 2] : -1));
      const onlyTimeExceeded =
        types.includes(ICMP_TIME_EXCEEDED) && types.every((t) => t === ICMP_TIME_EXCEEDED || t === ICMP_REDIRECT);
      // Or the time exceeded was due and the instance's rate limits refused it (K2; its counters
      // say so): the 7th looping datagram of a burst (campaign seed 991004 run 79).
      const refused =
        types.every((t) => t === ICMP_REDIRECT) &&
        ((s.kr as PacketResult & { evidence?: string[] }).evidence ?? []).some(
          (e) => e.endsWith(`:${EVIDENCE_ICMP_RL_GLOBAL}`) || e.endsWith(`:${EVIDENCE_ICMP_RL_HOST}`),
        );
      if (s.or.outputs.length !== 0) return null;
      // The looping packet an ICMP error itself: Linux never answers one with an error
      // (`__icmp_send`: no error about an error; campaign seed 995001 run 65).
      if (isIcmpErrorFrame(s.kin.frame))
        return types.every((t) => t === ICMP_REDIRECT)
          ? 'the contract stops a loop after 8 instance hops; Linux forwards until the TTL expires and sends no time exceeded about an ICMP error'
          : null;
      if (onlyTimeExceeded)
        return 'the contract stops a loop after 8 instance hops; Linux forwards until the TTL expires and answers time exceeded';
      return refused
        ? "the contract stops a loop after 8 instance hops; Linux forwards until the TTL expires, and its time exceeded was refused by the instance's ICMP rate limits (K2)"
        : null;
    },
  },
  {
    id: 'K6',
    title: "fragments are reassembled (held) by the NAT instance's conntrack",
    match(f, k) {
      if (f.index === -1)
        return ownOutputExcess(f, k, k.reassemblyExpiries)
          ? `filter counts of the ICMP "fragment reassembly time exceeded" an instance sends 30 s after a first fragment to itself (at most ${k.reassemblyExpiries?.packets})`
          : null;
      const s = sides(f, k);
      if (!s || s.kin.frame.length < 20) return null;
      const fo = ((s.kin.frame[6] << 8) | s.kin.frame[7]) & 0x3fff;
      return fo !== 0 ? 'input is a fragment' : null;
    },
  },
  {
    id: 'K2',
    title: "ICMP error rate limits decided on the kernel's real time and random global credit",
    match(f, k) {
      if (f.index === -1)
        return k2CounterExcess(f, k)
          ? `filter OUTPUT counts of ICMP errors one side's rate limit let through and the other's refused (kernel ${k.rateLimitSurplus?.kernel.packets} more, contract ${k.rateLimitSurplus?.other.packets} more at most)`
          : null;
      const s = sides(f, k);
      if (!s || !onlyKinds(f, ['output-count', 'egress', 'frame'])) return null;
      if (isIcmpError(s.kin.frame) || s.kr.fate !== s.or.fate || s.kr.reason !== s.or.reason) return null;
      const gen = (r: PacketResult) => r.outputs.filter((o) => isIcmpError(o.frame));
      const kGen = gen(s.kr);
      const oGen = gen(s.or);
      if (s.kr.outputs.length - kGen.length !== s.or.outputs.length - oGen.length || kGen.length === oGen.length)
        return null;
      // Every error one side has more of must be one its instance's rate limits apply to.
      const limited = (o: { frame: Uint8Array }): boolean => {
        const b = o.frame;
        const src = rd32(b, 12) >>> 0;
        const inst = k.scenario.instances.find((i) => i.privateIp >>> 0 === src);
        const type = b[ihl(b)];
        const code = b[ihl(b) + 1];
        if (!inst || type > 18 || (type === ICMP_DEST_UNREACH && code === ICMP_FRAG_NEEDED)) return false;
        return ((inst.sysctls.icmpRatemask >>> type) & 1) === 1;
      };
      const extra = kGen.length > oGen.length ? kGen : oGen;
      if (!extra.every(limited)) return null;
      if (kGen.length < oGen.length) {
        // The kernel refused: its counters must say so (Icmp OutRateLimitHost / OutRateLimitGlobal).
        const ev = (s.kr as PacketResult & { evidence?: string[] }).evidence ?? [];
        const why = ev.find(
          (e) => e.endsWith(`:${EVIDENCE_ICMP_RL_GLOBAL}`) || e.endsWith(`:${EVIDENCE_ICMP_RL_HOST}`),
        );
        return why ? `the kernel's rate limit refused ${oGen.length - kGen.length} error(s) (${why})` : null;
      }
      return `the kernel sent ${kGen.length - oGen.length} error(s) the contract's rate limit refused (real-time gaps ≥ virtual ones; random global credit)`;
    },
  },
  {
    id: 'K5',
    title: 'ICMP redirects when send_redirects is on and the source is on-link',
    match(f, k) {
      if (f.index === -1)
        return ownOutputExcess(f, k, k.redirectsSent)
          ? `filter OUTPUT counts of ${k.redirectsSent?.packets} ICMP redirect(s) the kernel's instances sent (at most their packets and bytes)`
          : null;
      const s = sides(f, k);
      if (!s) return null;
      const red = s.kr.outputs.filter((o) => isIcmpError(o.frame) && o.frame[ihl(o.frame)] === ICMP_REDIRECT).length;
      return red > 0 && s.kr.outputs.length - red === s.or.outputs.length
        ? 'extra ICMP redirect from the kernel'
        : null;
    },
  },
  {
    id: 'E11',
    title: "a security group's TCP tracking follows Linux's TCP tracker (INVALID segments start no tracked flow)",
    match(f, k) {
      if (f.index === -1) {
        // The end of such flows: the other engine's NAT instance saw (and counted, and tracked)
        // packets the kernel's ENI had dropped.
        const flows = k.sgInvalidFlows;
        const drops = k.sgInvalidDrops ?? 0;
        if (!flows || flows.size === 0 || f.differences.length === 0) return null;
        return f.differences.every((d) => {
          if (d.kind === 'counters') {
            // a packets only the other engine counted (at most the E11 drops), b only the kernel
            // (at most those it let through past the contract's allowance): x = b - a, a + b > 0 —
            // equal counts of different packets show as bytes only (campaign seed 993015 run 20).
            const x = counterExcess(d.message, k);
            const passed = k.sgAllowancePassed ?? 0;
            return (
              x !== null && ((x < 0 && -x <= drops) || (x > 0 && x <= passed) || (x === 0 && drops > 0 && passed > 0))
            );
          }
          const key = d.kind === 'conntrack' ? conntrackFlowKey(d.message) : null;
          return key !== null && flows.has(key);
        })
          ? "conntrack entries and nat/filter counts of flows whose packets the kernel's ENI dropped or let through (E11)"
          : null;
      }
      const s = sides(f, k);
      if (!s) return null;
      const flows = k.sgInvalidFlows;
      if (flows && flows.size > 0) {
        const frames = [s.kin.frame, ...s.kr.outputs.map((o) => o.frame), ...s.or.outputs.map((o) => o.frame)];
        if (frames.some((b) => flows.has(sgFlowKey(b) ?? '')))
          return "a flow with a segment the ENI's tracking (Linux's TCP tracker) called INVALID";
      }
      // The contract tracked those segments' flows: it counts them against the allowance.
      if ((k.sgInvalidSegments ?? 0) > 0 && s.or.reason === DROP_SG_ALLOWANCE && s.kr.reason !== DROP_SG_ALLOWANCE)
        return 'allowance reached in the contract only, which tracked flows Linux called INVALID';
      if (allowanceFlowOf(s, k) === 'E11')
        return 'a later packet of a flow the contract refused at the allowance (full of flows Linux called INVALID) and Linux tracked';
      return null;
    },
  },
  {
    id: 'E16',
    title: "a security group's closed TCP flows do not count toward the ENI's allowance in Linux",
    match(f, k) {
      if ((k.sgClosedFlows?.size ?? 0) === 0) return null;
      if (f.index === -1) {
        // The end of such flows: entries and nat counts of what the kernel let through.
        const flows = k.sgAllowanceFlows;
        const passed = k.sgAllowancePassed ?? 0;
        if (!flows || flows.size === 0 || f.differences.length === 0) return null;
        return f.differences.every((d) => {
          if (d.kind === 'counters') {
            const x = counterExcess(d.message, k);
            return x !== null && x > 0 && x <= passed;
          }
          const key = onlyEntryFlow(d, k, 'kernel');
          return key !== null && flows.has(key);
        })
          ? "conntrack entries and nat/filter counts of flows the kernel's ENI let through past the contract's allowance (E16)"
          : null;
      }
      const s = sides(f, k);
      if (!s) return null;
      if (s.or.reason === DROP_SG_ALLOWANCE && s.kr.reason !== DROP_SG_ALLOWANCE)
        return "the contract's allowance counted a closed TCP flow (FIN/RST) that Linux's connlimit no longer counts";
      return allowanceFlowOf(s, k) === 'E16'
        ? 'a later packet of a flow the contract refused at the allowance (counting closed flows) and Linux tracked'
        : null;
    },
  },
  {
    id: 'E17',
    title:
      "a security group's closed TCP flow is no tracked flow in Linux: a new SYN re-opens it, and after its CLOSE timeout it is gone",
    match(f, k) {
      const closed = k.sgClosedFlows;
      if (!closed || closed.size === 0) return null;
      if (f.index === -1) {
        // The rest of such a flow: entries of it only the other engine has (its NAT instance saw
        // packets the kernel's ENI denied).
        const reopened = k.sgReopenedFlows;
        if (!reopened || reopened.size === 0 || f.differences.length === 0) return null;
        return f.differences.every((d) => {
          const key = onlyEntryFlow(d, k, 'other');
          return key !== null && reopened.has(key);
        })
          ? "conntrack entries of flows a security group's Linux tracking no longer held after they closed (E17)"
          : null;
      }
      const s = sides(f, k);
      if (!s || s.kin.frame.length < 20 || s.kin.frame[9] !== PROTO_TCP || s.kr.reason !== DROP_SG_DENY) return null;
      // The other engine's security groups let it through (delivered, or dropped beyond them).
      const passed =
        s.or.fate === FATE_DELIVERED ||
        (s.or.reason !== DROP_SG_DENY && s.or.reason !== DROP_SG_ALLOWANCE && s.or.reason !== DROP_NACL_DENY);
      if (!passed || !onlyKinds(f, ['fate', 'reason', 'output-count', 'egress', 'frame', 'ct'])) return null;
      const key = sgFlowKey(s.kin.frame);
      if (key === null || !closed.has(key)) return null;
      return k.sgReopenedFlows?.has(key)
        ? 'a later packet of a closed TCP flow the contract still tracks and Linux no longer does'
        : "a TCP flow an ENI with security groups saw close (FIN or RST): Linux's tracking no longer holds it (a SYN re-opens it as a new flow, or its CLOSE / TIME_WAIT timeout ended it), so the group's rules as they are now decide; the contract tracks it until its idle timeout";
    },
  },
  {
    id: 'K3',
    title: "the instance's own stack answers what is delivered to it, and conntrack sees the answer",
    match(f, k) {
      const own = instanceOwnAddresses(k.scenario);
      if (f.index === -1) {
        const renamed = k3RenamedEntries(f, k, own);
        const ok = f.differences.every((d, i) => {
          if (d.kind === 'counters') return k3CounterExcess(d.message, k) !== null;
          if (d.kind !== 'conntrack') return false;
          if (renamed.has(i)) return true;
          const dst = tableEntryDst(d.message);
          return dst !== null && own.has(dst);
        });
        if (!ok) return null;
        return renamed.size > 0
          ? "a connection the contract NATed to another port: its port clashed with the contract's entry of a flow to the instance itself, which the kernel's stack had answered and removed"
          : 'conntrack entries (and the nat PREROUTING/INPUT counts they cause) of flows addressed to an instance itself';
      }
      const s = sides(f, k);
      if (!s || s.kin.frame.length < 20 || !onlyKinds(f, ['ct'])) return null;
      const dst = rd32(s.kin.frame, 16);
      if (own.has(dst)) return 'classification of a flow addressed to an instance itself, which its stack answered';
      // The instance's own next segment of such a flow: Linux killed the entry when the stack's RST
      // was its first reply (nf_conntrack_tcp_packet: "if only reply is a RST ... delete the
      // conntrack immediately"), so the kernel creates it anew where the contract, which never
      // saw that RST, finds it (campaign seed 990010 run 50).
      // The same for an ICMP error the instance sends about such a flow: RELATED in the contract,
      // INVALID in the kernel, which has no entry left to relate it to (campaign seed 990031 run 88).
      const error = isIcmpErrorFrame(s.kin.frame);
      const l4 = (s.kin.frame[0] & 15) * 4;
      const key = error ? sgFlowKey(s.kin.frame.subarray(l4 + 8)) : sgFlowKey(s.kin.frame);
      // A segment that cannot open an entry finds none: Linux calls it INVALID, where one that can
      // is NEW — a RST (campaign seed 991003 run 51), a FIN (seed 995007 run 75), a SYN/ACK, or an
      // ACK without loose pickup (tcp_new(): tcp_conntracks[0][index][sNO] is sIV).
      const tcp = !error && s.kin.frame[9] === PROTO_TCP;
      const rst = tcp && (s.kin.frame[l4 + 13] & F_RST) !== 0;
      const opens = !tcp || tcpSegmentCanOpen(s.kin.frame[l4 + 13], k.scenario.conntrack.tcpLoose);
      if (
        s.kr.ct === (error || !opens ? CT_INVALID : CT_NEW) &&
        own.has(rd32(s.kin.frame, 12)) &&
        key !== null &&
        k.localTcpFlows?.has(key) === true
      )
        return error
          ? "an instance's own ICMP error about a flow whose entry its stack's answer removed in the kernel"
          : rst
            ? "an instance's own RST of a flow whose entry its stack's answer removed in the kernel (no entry: INVALID)"
            : !opens
              ? "an instance's own segment of a flow whose entry its stack's answer removed in the kernel (a segment that opens none: INVALID)"
              : "an instance's own segment of a flow whose entry its stack's answer removed in the kernel";
      return null;
    },
  },
];

/**
 * The class ('E11'/'E16') of the allowance difference that started this packet's flow (its input's
 * or an output's), or null.
 */
function allowanceFlowOf(s: Sides, k: KernelRunFacts): string | null {
  const classes = k.sgAllowanceFlowClass;
  if (!classes || classes.size === 0) return null;
  for (const b of [s.kin.frame, ...s.kr.outputs.map((o) => o.frame), ...s.or.outputs.map((o) => o.frame)]) {
    const c = classes.get(sgFlowKey(b) ?? '');
    if (c !== undefined) return c;
  }
  return null;
}

/**
 * Whether a TCP segment with these flags can open a conntrack entry (tcp_new(): the sNO column of
 * tcp_conntracks — a SYN opens one, an ACK only with loose pickup; RST, FIN, SYN/ACK and no flags
 * are sIV), by get_conntrack_index()'s order: RST, then SYN (with ACK: SYN/ACK), FIN, ACK.
 */
function tcpSegmentCanOpen(flags: number, loose: boolean): boolean {
  if ((flags & F_RST) !== 0) return false;
  if ((flags & F_SYN) !== 0) return (flags & F_ACK) === 0;
  if ((flags & F_FIN) !== 0) return false;
  return (flags & F_ACK) !== 0 && loose;
}

/** The first rule that explains the difference, or null. */
export function classifyKernelDifference(f: DifferenceFacts, k: KernelRunFacts): DifferenceClass | null {
  for (const r of KERNEL_DIFFERENCE_RULES) {
    const why = r.match(f, k);
    if (why !== null) return { id: r.id, why };
  }
  return null;
}
