// Issue 8's model-vs-kernel suite: every case of cases.ts runs through the real kernel once; the
// test asserts what Linux does (CHECKS), then runs the model on the same input and compares the
// two packet by packet (src/diff/compare/compare.ts: verdicts, frames up to a consistent port renaming,
// conntrack tables, nat counters). Every difference must be one listed in
// docs/kernel-differences.md, asserted exactly (EXPECTED_DIFFERENCES). Needs root and the tools;
// skipped with the reason otherwise.
import { describe, expect, it } from 'vitest';
import {
  checkKernelPrerequisites,
  createKernelEngine,
  kernelOutputNormaliser,
  type KernelPacketResult,
} from '../../src/oracle/index.ts';
import { createModelEngine } from '../../src/model/index.ts';
import { compareCounters, compareRuns } from '../../src/diff/compare/compare.ts';
import {
  PacketView,
  parseIpv4,
  PARSE_BAD_IP_VERSION,
  PARSE_OK,
  tcpMss as mssOf,
  verifyIpv4Header,
  verifyL4Checksum,
} from '../../src/packet/index.ts';
import {
  CT_ESTABLISHED,
  CT_INVALID,
  CT_NEW,
  CT_RELATED,
  DROP_BLACKHOLE,
  DROP_FILTER_REJECT,
  DROP_IGW_NO_PUBLIC_IP,
  DROP_MALFORMED,
  DROP_IP_FORWARD_OFF,
  DROP_INSTANCE_STOPPED,
  DROP_KERNEL_UNSEEN,
  DROP_NACL_DENY,
  DROP_SG_ALLOWANCE,
  DROP_SG_DENY,
  DROP_NAT_CLASH,
  DROP_NO_HOST,
  DROP_SRC_DST_CHECK_DST,
  DROP_SRC_DST_CHECK_SRC,
  DROP_TTL_EXCEEDED,
  FATE_DELIVERED,
  FATE_DROPPED,
} from '../../src/spec/reasons.ts';
import type {
  ConntrackEntry,
  Engine,
  FilterRuleCounter,
  InputPacket,
  NatRuleCounter,
  PacketResult,
} from '../../src/spec/engine.ts';
import { TimelineCursor, processWithTimeline } from '../../src/diff/timeline.ts';
import { instancePoint } from '../../src/spec/scenario.ts';
import {
  APP,
  APP_IP,
  APP2_IP,
  NAT,
  NAT_EIP,
  NAT_IP,
  NATB_EIP,
  NET,
  SRV,
  WEB,
  WEB_EIP,
  WEB_IP,
  filterCases,
  natCases,
  type NatCase,
} from './cases.ts';

const pre = await checkKernelPrerequisites();
if (!pre.ok) console.warn(`test/oracle/cases.test.ts skipped: ${pre.missing.join('; ')}`);

interface Run<R extends PacketResult = KernelPacketResult> {
  r: R[];
  ct: ConntrackEntry[];
  counters: NatRuleCounter[];
  /** The NAT instances' filter-table counters (Engine.filterCounters). */
  filter: FilterRuleCounter[];
}

interface AnyEngine<R extends PacketResult> {
  process(b: readonly InputPacket[]): Promise<R[]>;
  advance(t: number): Promise<void>;
  conntrack(): Promise<ConntrackEntry[]>;
  natCounters(): Promise<NatRuleCounter[]>;
  filterCounters?(): Promise<FilterRuleCounter[]>;
  setFilterRules?(next: import('../../src/spec/scenario.ts').Scenario): Promise<void>;
  close(): Promise<void>;
}

async function runOn<R extends PacketResult>(e: AnyEngine<R>, c: NatCase): Promise<Run<R>> {
  try {
    const r: R[] = [];
    let from = 0;
    for (const f of c.filters ?? []) {
      r.push(...(await e.process(c.inputs.slice(from, f.at))));
      if (!e.setFilterRules) throw new Error('engine cannot change filter rules');
      await e.setFilterRules(f.scenario);
      from = f.at;
    }
    // Scenario timelines: the inputs split at the event times, each event applied in between.
    if (c.scenario.timeline)
      r.push(
        ...((await processWithTimeline(
          e as unknown as Engine,
          'engine',
          c.inputs.slice(from),
          new TimelineCursor(c.scenario),
        )) as R[]),
      );
    else r.push(...(await e.process(c.inputs.slice(from))));
    if (c.advanceToUs !== undefined) {
      await e.advance(c.advanceToUs);
      r.push(...(await e.process(c.after ?? [])));
    }
    return {
      r,
      ct: await e.conntrack(),
      counters: await e.natCounters(),
      filter: e.filterCounters ? await e.filterCounters() : [],
    };
  } finally {
    await e.close();
  }
}

/**
 * A real-time case (the ICMP rate limits refill by the clock) shows what it says only when the
 * kernel kept to the packets' times: on a loaded machine it is run again, at most 5 times in all,
 * while the kernel lagged more than this behind them (the issue's "kernel lagged", not a difference).
 */
const REAL_TIME_LAG_MS = 50;
const REAL_TIME_ATTEMPTS = 5;

async function runCase(c: NatCase): Promise<Run & { maxLagMs: number }> {
  for (let attempt = 1; ; attempt++) {
    const e = await createKernelEngine(c.scenario, { maxWaitMs: 5000 });
    const run = await runOn(e, c);
    if (c.realTime === undefined || e.maxLagMs <= REAL_TIME_LAG_MS || attempt >= REAL_TIME_ATTEMPTS)
      return { ...run, maxLagMs: e.maxLagMs };
  }
}

/**
 * Model-vs-kernel differences that are expected, per case: each entry of
 * docs/kernel-differences.md that these cases exercise, matched by message.
 */
const EXPECTED_DIFFERENCES: Record<string, RegExp[]> = {
  // K5: the redirect the kernel's NAT instance sent web on the way (the contract sends none),
  // and its pass through the instance's filter OUTPUT policy.
  'a redirect to the sender of a packet the filter drops: the packet is not delivered anywhere': [
    /^output-count packet #0 .* 0 vs 1 output frames$/,
    /^counters filter counters instance 0 OUTPUT rule -1: model 0 pkts\/0 bytes vs kernel 1\/68$/,
  ],
  // K3: the NAT instance's stack answers the SYN with an RST, which conntrack sees in LOCAL_OUT
  // (before natlab's OUTPUT drop) and which closes the unreplied entry; the model has no stack.
  'unsolicited TCP SYN to the NAT instance (its stack answers RST)': [
    /conntrack .*only model has tcp +6 \d+ SYN_SENT src=198\.51\.100\.7 dst=10\.0\.0\.10 sport=5555 dport=22/,
  ],
};

const pv = new PacketView();
function view(b: Uint8Array): PacketView {
  expect(parseIpv4(b, 0, b.length, pv)).toBe(PARSE_OK);
  expect(verifyIpv4Header(b, pv)).toBe(true);
  expect(verifyL4Checksum(b, pv)).toBe(true);
  return pv;
}
/** IP header and L4 checksums both verify (a rewritten frame is valid on the wire). */
function checksumsOk(b: Uint8Array): boolean {
  const v = new PacketView();
  return parseIpv4(b, 0, b.length, v) === PARSE_OK && verifyIpv4Header(b, v) && verifyL4Checksum(b, v);
}
const egress = (x: KernelPacketResult): number[] => x.outputs.map((o) => o.egress);
const counter = (run: Run, chain: string, rule: number): number =>
  run.counters.find((c) => c.instance === NAT && c.chain === chain && c.rule === rule)?.packets ?? -1;

const CHECKS: Record<string, (run: Run) => void> = {
  'filter: INPUT policy DROP: ssh dropped, telnet answered with a reset': ({ r, ct }) => {
    expect(r.map((x) => x.fate)).toEqual([FATE_DROPPED, FATE_DROPPED]);
    expect(r[0].outputs).toHaveLength(0);
    expect(ct).toHaveLength(0);
    const rst = view(r[1].outputs[0].frame);
    expect([rst.src, rst.dst, rst.sport, rst.tcpFlags]).toEqual([NAT_IP, APP_IP, 23, 0x14]);
  },
  'timeline: route swap to the standby NAT instance mid-flow (it picks the flow up with its own address)': ({ r }) => {
    expect(r.map((x) => x.fate)).toEqual(Array(6).fill(FATE_DELIVERED));
    expect(egress(r[3])).toEqual([NET]);
    expect(view(r[3].outputs[0].frame).src).toBe(NATB_EIP);
    expect(egress(r[4])).toEqual([APP]); // the old instance still has the flow
    expect(egress(r[5])).toEqual([APP]); // and so has the new one
  },
  'timeline: NAT instance stopped (blackhole, stopped ENI) and started (empty conntrack)': ({ r, ct }) => {
    expect(r.map((x) => x.reason).slice(3, 5)).toEqual([DROP_BLACKHOLE, DROP_INSTANCE_STOPPED]);
    expect(r[5].ct).toBe(CT_NEW); // picked up mid-stream (nf_conntrack_tcp_loose)
    expect(view(r[5].outputs[0].frame).src).toBe(NAT_EIP);
    expect(egress(r[6])).toEqual([APP]);
    expect(ct).toHaveLength(1);
  },
  'timeline: ENI moved to the standby (same address, empty conntrack), then the Elastic IP moved': ({ r }) => {
    expect(r[3].ct).toBe(CT_NEW);
    const v = view(r[3].outputs[0].frame);
    expect([v.src, v.sport]).toEqual([NAT_EIP, 41000]);
    expect(egress(r[4])).toEqual([APP]);
    expect(r[5].reason).toBe(DROP_IGW_NO_PUBLIC_IP);
  },
  'filter: DROP by port, other traffic passes and is NATed': ({ r, ct }) => {
    expect(r.map((x) => x.fate)).toEqual([FATE_DROPPED, FATE_DELIVERED]);
    expect(r[0].outputs).toHaveLength(0);
    expect(ct).toHaveLength(1);
  },
  'filter: REJECT variants send port unreachable, host prohibited, admin prohibited': ({ r, ct }) => {
    expect(r.map((x) => x.fate)).toEqual([FATE_DROPPED, FATE_DROPPED, FATE_DROPPED, FATE_DROPPED]);
    expect(r.map((x) => x.outputs.map((o) => view(o.frame).icmpCode))).toEqual([[3], [10], [13], [0]]);
    expect(r.every((x) => x.outputs[0].egress === APP)).toBe(true);
    expect(ct).toHaveLength(0);
  },
  "filter: INPUT REJECT answers a datagram to the Elastic IP; the stack's own port unreachable stays inside": ({
    r,
  }) => {
    expect(r[0].reason).toBe(DROP_FILTER_REJECT);
    expect(egress(r[0])).toEqual([NET]);
    const u = view(r[0].outputs[0].frame);
    expect([u.proto, u.src, u.dst, u.icmpType, u.icmpCode]).toEqual([1, NAT_EIP, SRV, 3, 3]);
    // Delivered to the instance's stack (its frame as it reached the ENI); the stack's port
    // unreachable is not a result of the VPC path and stays inside.
    expect(r[1].fate).toBe(FATE_DELIVERED);
    expect(egress(r[1])).toEqual([instancePoint(NAT)]);
  },
  'filter: REJECT --reject-with tcp-reset answers a SYN with RST+ACK and an ACK with RST': ({ r }) => {
    const a = view(r[0].outputs[0].frame);
    expect([a.src, a.dst, a.sport, a.dport, a.tcpFlags, a.tcpAck, a.df]).toEqual([
      SRV,
      APP_IP,
      25,
      41000,
      0x14,
      1001,
      1,
    ]);
    const b = view(r[1].outputs[0].frame);
    expect([b.tcpFlags, b.tcpSeq]).toEqual([0x04, 99]);
  },
  'filter: --ctstate INVALID -j DROP stops the packet that would leave un-NATed': ({ r }) => {
    expect(r[0].fate).toBe(FATE_DELIVERED);
    expect(r[2].ct).toBe(CT_INVALID);
    expect(r[2].outputs).toHaveLength(0);
  },
  'filter: OUTPUT rules count the time exceeded and the unreachable the instance sends': ({ r, filter }) => {
    expect(r.map((x) => x.reason)).toEqual([DROP_TTL_EXCEEDED, DROP_FILTER_REJECT, 0]);
    expect(r.map((x) => x.outputs.length)).toEqual([1, 1, 1]);
    const n = (chain: string, rule: number) =>
      filter.find((c) => c.instance === NAT && c.chain === chain && c.rule === rule)?.packets;
    // OUTPUT: rule 0 (LOG time exceeded) 1, rule 1 (accept host prohibited) 1, rule 2 0, policy 1
    // (the time exceeded, after the LOG) — the kernel's own guard is not listed.
    expect([n('OUTPUT', 0), n('OUTPUT', 1), n('OUTPUT', 2), n('OUTPUT', -1)]).toEqual([1, 1, 0, 1]);
    expect([n('FORWARD', 0), n('FORWARD', -1)]).toEqual([1, 1]);
  },
  'filter: multiport --dports accepts listed ports, the policy DROP the rest': ({ r }) => {
    expect(r.map((x) => x.fate)).toEqual([FATE_DELIVERED, FATE_DELIVERED, FATE_DELIVERED, FATE_DROPPED]);
  },
  'filter: user chain with LOG and RETURN, policy DROP with ESTABLISHED,RELATED accept': ({ r }) => {
    expect(r.map((x) => x.fate)).toEqual([FATE_DELIVERED, FATE_DELIVERED, FATE_DROPPED, FATE_DROPPED]);
  },
  'udp request/response': ({ r, ct }) => {
    expect(r.map((x) => x.ct)).toEqual([CT_NEW, CT_ESTABLISHED]);
    expect(egress(r[1])).toEqual([APP]);
    expect(ct).toHaveLength(1);
    // A reply within 2 s of the first packet: SEEN_REPLY, not ASSURED (udp stream rule).
    expect(ct[0]).toMatchObject({ seenReply: true, assured: false });
  },
  'udp unreplied burst': ({ r, ct, counters }) => {
    // Every original-direction packet before a reply is NEW; one entry; the rule counts it once.
    expect(r.map((x) => x.ct)).toEqual([CT_NEW, CT_NEW, CT_NEW]);
    expect(ct).toHaveLength(1);
    expect(ct[0].seenReply).toBe(false);
    expect(counters.find((c) => c.chain === 'POSTROUTING' && c.rule === 0)?.packets).toBe(1);
  },
  'tcp handshake, data, FIN close': ({ r, ct }) => {
    expect(r.every((x) => x.fate === FATE_DELIVERED)).toBe(true);
    expect(ct[0]).toMatchObject({ state: 'TIME_WAIT', assured: true });
  },
  'tcp RST from the server': ({ r, ct }) => {
    expect(r[3].fate).toBe(FATE_DELIVERED);
    expect(ct[0]).toMatchObject({ state: 'CLOSE', assured: true });
    expect(ct[0].timeout).toBeLessThanOrEqual(10);
  },
  'icmp echo': ({ r, ct }) => {
    expect(egress(r[1])).toEqual([APP]);
    expect(ct[0]).toMatchObject({ proto: 1, seenReply: true, assured: false });
  },
  'icmp port unreachable for a udp flow from the far side': ({ r, ct }) => {
    expect(r[1].ct).toBe(CT_RELATED);
    expect(egress(r[1])).toEqual([APP]);
    const v = view(r[1].outputs[0].frame);
    expect([v.dst, v.innerSrc, v.innerSport]).toEqual([APP_IP, APP_IP, 40000]);
    // Errors never change the entry.
    expect(ct[0].seenReply).toBe(false);
  },
  'icmp host unreachable for a tcp flow from the far side': ({ r, ct }) => {
    expect(r[1].ct).toBe(CT_RELATED);
    expect(view(r[1].outputs[0].frame).innerSrc).toBe(APP_IP);
    expect(ct[0].state).toBe('SYN_SENT');
  },
  'two private hosts, same source port, same destination': ({ r, ct }) => {
    expect(r.map(egress)).toEqual([[NET], [NET]]);
    const ports = r.map((x) => view(x.outputs[0].frame).sport);
    expect(ports[0]).toBe(5000);
    expect(ports[1]).not.toBe(5000);
    expect(ports[1]).toBeGreaterThanOrEqual(1024);
    expect(ct.map((c) => c.reply.dport).sort()).toEqual([...ports].sort());
  },
  "unsolicited inbound to the NAT instance's Elastic IP": ({ r, ct, counters }) => {
    expect(r[0].fate).toBe(FATE_DELIVERED);
    expect(egress(r[0])).toEqual([instancePoint(NAT)]);
    expect(ct[0].orig.dst).toBe(NAT_IP);
    expect(counters.find((c) => c.chain === 'INPUT' && c.rule === -1)?.packets).toBe(1);
  },
  "inbound to the web server's Elastic IP and its reply": ({ r, ct }) => {
    expect(egress(r[0])).toEqual([WEB]);
    expect(view(r[0].outputs[0].frame).dst).toBe(WEB_IP);
    expect(egress(r[1])).toEqual([NET]);
    expect(view(r[1].outputs[0].frame).src).toBe(WEB_EIP);
    expect(ct).toEqual([]);
  },
  'bad UDP checksum from inside (INVALID, forwarded un-NATed)': ({ r, ct }) => {
    expect(r[0]).toMatchObject({ ct: CT_INVALID, fate: FATE_DROPPED, reason: DROP_IGW_NO_PUBLIC_IP });
    expect(ct).toEqual([]);
  },
  'a plain host sending to its own address (delivered to its ENI)': ({ r, ct }) => {
    expect(r[0]).toMatchObject({ fate: FATE_DELIVERED });
    expect(r[0].outputs.map((o) => o.egress)).toEqual([WEB]);
    expect(ct).toEqual([]);
  },
  'IPv4 frame with version 6 from inside (malformed)': ({ r, ct }) => {
    expect(r[0]).toMatchObject({ fate: FATE_DROPPED, reason: DROP_MALFORMED, detail: PARSE_BAD_IP_VERSION });
    expect(r[0].outputs).toEqual([]);
    expect(ct).toEqual([]);
  },
  'non-SYN first TCP packet (loose pickup)': ({ r, ct }) => {
    expect(r[0]).toMatchObject({ ct: CT_NEW, fate: FATE_DELIVERED });
    expect(view(r[0].outputs[0].frame).src).toBe(NAT_EIP);
    expect(ct[0]).toMatchObject({ state: 'ESTABLISHED', seenReply: false });
    expect(ct[0].timeout).toBeLessThanOrEqual(300);
  },
  'non-SYN first TCP packet with tcp_loose=0': ({ r, ct }) => {
    expect(r[0]).toMatchObject({ ct: CT_INVALID, reason: DROP_IGW_NO_PUBLIC_IP });
    expect(ct).toEqual([]);
  },
  'source/dest check left enabled on the NAT instance': ({ r }) => {
    expect(r[0]).toMatchObject({ fate: FATE_DROPPED, reason: DROP_SRC_DST_CHECK_DST });
  },
  'ip_forward=0 on the NAT instance': ({ r, ct }) => {
    // Silent: ip_error() sends no ICMP when the input device does not forward.
    expect(r[0]).toMatchObject({ fate: FATE_DROPPED, reason: DROP_IP_FORWARD_OFF, outputs: [] });
    expect(ct).toEqual([]);
  },
  'MASQUERADE restricted by -s that does not match': (run) => {
    expect(run.r[0]).toMatchObject({ ct: CT_NEW, reason: DROP_IGW_NO_PUBLIC_IP });
    // Null binding: the entry exists with the reply to the untranslated source.
    expect(run.ct[0].reply.dst).toBe(APP_IP);
    expect(counter(run, 'POSTROUTING', -1)).toBe(1);
    expect(counter(run, 'POSTROUTING', 0)).toBe(0);
  },
  'SNAT --to-source': ({ r, ct }) => {
    expect(view(r[0].outputs[0].frame).src).toBe(NAT_EIP);
    expect(egress(r[1])).toEqual([APP]);
    expect(ct[0].reply.dst).toBe(NAT_IP);
  },
  'DNAT --to-destination range: the address is jhash2 of the client (12 clients, 4 hosts)': ({ r, ct }) => {
    expect(r.every((x) => x.fate === FATE_DELIVERED)).toBe(true);
    // More than one host is chosen, and each choice is the kernel's hash (the model agrees below).
    expect(new Set(r.map((x) => egress(x)[0])).size).toBeGreaterThan(1);
    expect(ct).toHaveLength(12);
  },
  'SNAT --to-source range: the address is jhash2 of the source with the destination, or not with --persistent': ({
    ct,
  }) => {
    const chosen = (src: number) => ct.filter((c) => c.orig.src === src).map((c) => c.reply.dst);
    expect(chosen(APP_IP)).toHaveLength(8);
    expect(new Set(chosen(APP_IP)).size).toBeGreaterThan(1);
    expect(new Set(chosen(APP2_IP)).size).toBe(1);
  },
  'nf_nat_edemux: a DNAT virtual IP to a server the client already reaches from the same port': ({ r, ct }) => {
    expect(r.map((x) => x.fate)).toEqual(Array(4).fill(FATE_DELIVERED));
    const virt = ct.find((c) => c.orig.dport === 443);
    const direct = ct.find((c) => c.orig.dport === 5201);
    expect(direct?.reply).toMatchObject({ src: SRV, sport: 5201, dst: NAT_IP, dport: 10000 });
    expect(virt?.reply).toMatchObject({ src: SRV, sport: 5201, dst: NAT_IP });
    expect(virt?.reply.dport).not.toBe(10000);
    const v = view(r[3].outputs[0].frame);
    expect([v.dst, v.dport, v.sport === 10000]).toEqual([SRV, 5201, false]);
  },
  'nf_nat_edemux: two ports redirected to one local service from one client port (nat INPUT null binding)': ({
    r,
    ct,
    counters,
  }) => {
    // Every datagram reaches the instance's stack (unreplied: each is NEW); the output is the frame as
    // it reached its ENI.
    expect(r.map((x) => x.fate)).toEqual(Array(4).fill(FATE_DELIVERED));
    expect(r.map((x) => x.ct)).toEqual([CT_NEW, CT_NEW, CT_NEW, CT_NEW]);
    expect(r.map((x) => view(x.outputs[0].frame).dport)).toEqual([5201, 5202, 5203, 5203]);
    // Three entries, one per original destination port, each replying from the service's port:
    // the first keeps source port 10000, the redirected two were moved to two other ports.
    expect(ct).toHaveLength(3);
    const by = (d: number) => ct.find((c) => c.orig.dport === d)!;
    for (const d of [5201, 5202, 5203]) {
      expect(by(d).orig).toMatchObject({ src: APP_IP, sport: 10000, dst: NAT_IP });
      expect(by(d).reply).toMatchObject({ src: NAT_IP, sport: 5201, dst: APP_IP });
    }
    const ports = [5201, 5202, 5203].map((d) => by(d).reply.dport);
    expect(ports[0]).toBe(10000);
    expect(new Set(ports).size).toBe(3);
    expect(ports.every((x) => x >= 1024)).toBe(true);
    // The INPUT chain's policy counted the three new connections.
    expect(counters.find((c) => c.instance === NAT && c.chain === 'INPUT' && c.rule === -1)?.packets).toBe(3);
  },
  'DNAT port forwarding (with MASQUERADE so the reply returns through the NAT)': ({ r, ct }) => {
    expect(egress(r[0])).toEqual([WEB]);
    const v = view(r[0].outputs[0].frame);
    expect([v.src, v.dst, v.dport]).toEqual([NAT_IP, WEB_IP, 80]);
    expect(egress(r[1])).toEqual([NET]);
    const b = view(r[1].outputs[0].frame);
    expect([b.src, b.sport, b.dst]).toEqual([NAT_EIP, 8080, SRV]);
    expect(ct[0].state).toBe('SYN_RECV');
  },
  'port exhaustion: SNAT to a single port': ({ r, ct }) => {
    expect(view(r[0].outputs[0].frame).sport).toBe(2000);
    expect(r[1]).toMatchObject({ fate: FATE_DROPPED, reason: DROP_NAT_CLASH, outputs: [] });
    expect(ct).toHaveLength(1);
  },
  'DNAT: the time exceeded for a first TTL-1 packet quotes it as sent (the DNAT undone)': ({ r }) => {
    expect(r.map((x) => x.reason)).toEqual([DROP_TTL_EXCEEDED, DROP_TTL_EXCEEDED]);
    expect(r.map(egress)).toEqual([[NET], [APP]]);
    // The quoted packet's destination is the NAT instance's address and port 8080, as the packet
    // reached it — not the DNAT target 10.0.0.20:80.
    const quoted = r.map((x) => view(x.outputs[0].frame)).map((v) => [v.icmpType, v.innerDst, v.innerDport]);
    expect(quoted).toEqual([
      [11, NAT_IP, 8080],
      [11, NAT_IP, 8080],
    ]);
  },
  'TTL 1 through the NAT instance': ({ r, ct }) => {
    expect(r[0]).toMatchObject({ fate: FATE_DROPPED, reason: DROP_TTL_EXCEEDED });
    expect(egress(r[0])).toEqual([APP]);
    expect(view(r[0].outputs[0].frame).icmpType).toBe(11);
    expect(ct).toEqual([]);
  },
  'ICMP rate limit: a burst of TTL-1 packets gets 6 time exceeded, then one per second': ({ r }) => {
    expect(r.every((x) => x.reason === DROP_TTL_EXCEEDED)).toBe(true);
    expect(r.map((x) => x.outputs.length)).toEqual([1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0]);
  },
  'filter: REJECT answers share the ICMP rate limit (6, then none within the second)': ({ r }) => {
    expect(r.every((x) => x.reason === DROP_FILTER_REJECT)).toBe(true);
    expect(r.map((x) => x.outputs.length)).toEqual([1, 1, 1, 1, 1, 1, 0, 0]);
  },
  'ICMP rate limit: icmp_ratelimit=0 answers every TTL-1 packet': ({ r }) =>
    expect(r.map((x) => x.outputs.length)).toEqual(Array(9).fill(1)),
  'ICMP rate limit: icmp_ratemask without time exceeded (0x8) answers every TTL-1 packet': ({ r }) =>
    expect(r.map((x) => x.outputs.length)).toEqual(Array(9).fill(1)),
  'ICMP rate limit: icmp_ratelimit=200 refills one error per 200 ms': ({ r }) =>
    expect(r.map((x) => x.outputs.length)).toEqual([1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0]),
  'ICMP rate limit: icmp_msgs_per_sec=0 leaves no credit (no time exceeded at all)': ({ r }) => {
    expect(r.map((x) => [x.reason, x.outputs.length])).toEqual(Array(3).fill([DROP_TTL_EXCEEDED, 0]));
  },
  'hairpin through the IGW to the web server': ({ r }) => {
    expect(egress(r[0])).toEqual([WEB]);
    const v = view(r[0].outputs[0].frame);
    expect([v.src, v.dst]).toEqual([NAT_EIP, WEB_IP]);
  },
  'UDP timeout (udp=1 s): the reply after expiry is not translated': ({ r }) => {
    expect(r[1]).toMatchObject({ ct: CT_NEW, fate: FATE_DELIVERED });
    expect(egress(r[1])).toEqual([instancePoint(NAT)]);
  },
  'ICMP timeout (icmp=1 s): the echo reply after expiry is unsolicited': ({ r, ct }) => {
    expect(r[1].ct).toBe(CT_INVALID);
    expect(egress(r[1])).toEqual([instancePoint(NAT)]);
    expect(ct.filter((c) => c.proto === 1)).toEqual([]);
  },
  'udp stream: a reply, then a packet more than 2 s after the first, makes it ASSURED': ({ ct }) => {
    expect(ct[0]).toMatchObject({ assured: true, seenReply: true });
    expect(ct[0].timeout).toBeGreaterThan(100);
  },
  'tcp SYN retransmitted': ({ r, ct }) => {
    expect(r.map((x) => x.ct)).toEqual([CT_NEW, CT_NEW]);
    expect(r.map(egress)).toEqual([[NET], [NET]]);
    expect(ct).toHaveLength(1);
  },
  'same host and port to two destinations keeps its port': ({ r, ct }) => {
    expect(r.map((x) => view(x.outputs[0].frame).sport)).toEqual([40000, 40000]);
    expect(ct).toHaveLength(2);
  },
  'icmp host unreachable for an echo from the far side': ({ r }) => {
    expect(r[1].ct).toBe(CT_RELATED);
    expect(egress(r[1])).toEqual([APP]);
    expect(view(r[1].outputs[0].frame).innerSrc).toBe(APP_IP);
  },
  'blackhole route': ({ r }) => expect(r[0]).toMatchObject({ fate: FATE_DROPPED, reason: DROP_BLACKHOLE, outputs: [] }),
  'VPC address no instance holds': ({ r }) =>
    expect(r[0]).toMatchObject({ fate: FATE_DROPPED, reason: DROP_NO_HOST, outputs: [] }),
  'source/dest check on the web server: spoofed source': ({ r }) =>
    expect(r[0]).toMatchObject({ fate: FATE_DROPPED, reason: DROP_SRC_DST_CHECK_SRC }),
  'MASQUERADE --to-ports': ({ r }) => {
    const ports = r
      .slice(0, 2)
      .map((x) => view(x.outputs[0].frame).sport)
      .sort();
    expect(ports).toEqual([5000, 5001]);
    expect(r[2]).toMatchObject({ fate: FATE_DROPPED, reason: DROP_NAT_CLASH });
  },
  'MASQUERADE --random and SNAT --random-fully: no port preservation, a random port in its class': ({ r }) => {
    const cls = (x: number) => (x < 512 ? 0 : x < 1024 ? 1 : 2);
    const pairs = r.map((x, i) => [[40000, 41000, 53, 700][i % 4], view(x.outputs[0].frame).sport]);
    expect(r.map((x) => egress(x))).toEqual(Array(8).fill([NET]));
    // Each chosen port lies in its original port's class (ports 1-511 from 1, 600-1023 from 600).
    for (const [orig, chosen] of pairs) expect([orig, cls(chosen)]).toEqual([orig, cls(orig)]);
    expect(pairs.every(([, c]) => c !== 0 && (c >= 600 || c <= 511))).toBe(true);
    // Not preserved (each port is kept with odds of at most 1 in 424): at most one of eight.
    expect(pairs.filter(([o, c]) => o === c).length).toBeLessThanOrEqual(1);
  },
  'DNAT without MASQUERADE: the reply leaves by the IGW from the web server': ({ r }) => {
    expect(view(r[0].outputs[0].frame).src).toBe(SRV);
    const b = view(r[1].outputs[0].frame);
    expect([b.src, b.sport]).toEqual([WEB_EIP, 80]);
  },
  'TTL 255 out through the NAT instance': ({ r }) => {
    const o = r[0].outputs[0] as KernelPacketResult['outputs'][number];
    expect(view(o.frame).ttl).toBe(254);
    expect(o.adjustments).toEqual(['igw', 'ttl+1']);
  },
  "echo request to the web server's Elastic IP": ({ r }) => {
    expect(egress(r[0])).toEqual([WEB]);
    expect(r[0].ct).toBe(0);
  },
  'UDP without checksum through the NAT instance': ({ r }) => {
    const o = r[0].outputs[0].frame;
    expect((o[26] << 8) | o[27]).toBe(0);
    expect(view(o).src).toBe(NAT_EIP);
  },
  'bad TCP checksum from outside to the NAT instance': ({ r }) => {
    expect(r[0].ct).toBe(CT_INVALID);
    expect(egress(r[0])).toEqual([instancePoint(NAT)]);
  },
  'TCPMSS --clamp-mss-to-pmtu in FORWARD: MSS lowered, MSS inserted, SYN with data untouched': ({ r }) => {
    // ENI MTU 9001 − 40 = 8961; no option → min(8961, 536) inserted; data → left alone; 1460 kept.
    expect(r.map((x) => mssOf(x.outputs[0].frame))).toEqual([8961, 536, 8961, null, 1460]);
    expect(r[1].outputs[0].frame.length).toBe(44);
    expect(r.every((x) => checksumsOk(x.outputs[0].frame))).toBe(true);
  },
  'TCPMSS --set-mss 1400 in POSTROUTING: both SYN and SYN/ACK, ACK untouched': ({ r }) => {
    expect(r.slice(0, 3).map((x) => mssOf(x.outputs[0].frame))).toEqual([1400, 1400, null]);
    expect(r.slice(0, 3).every((x) => checksumsOk(x.outputs[0].frame))).toBe(true);
    expect(r[3].fate).toBe(FATE_DROPPED);
  },
  'unsolicited TCP SYN to the NAT instance (its stack answers RST)': ({ r, ct }) => {
    expect(egress(r[0])).toEqual([instancePoint(NAT)]);
    // The stack's RST (dropped by natlab before it leaves) passed conntrack and removed the entry.
    expect(ct.filter((c) => c.proto === 6 && c.state === 'SYN_SENT')).toEqual([]);
  },
  'masqueraded packet routed back to the NAT instance (martian source)': ({ r, ct }) => {
    expect(r.map((x) => x.fate)).toEqual([FATE_DROPPED, FATE_DROPPED]);
    expect(r.map((x) => x.outputs.length)).toEqual([0, 0]);
    // One entry per flow (the first pass), with the masquerade mapping: the returning packet's
    // own entry was never confirmed.
    expect(ct).toHaveLength(2);
    expect(ct.map((c) => c.orig.src)).toEqual([APP_IP, APP_IP]);
  },
  'a redirect to the sender of a packet the filter drops: the packet is not delivered anywhere': ({ r }) => {
    expect(r[0].fate).toBe(FATE_DROPPED);
    // The only output: the NAT instance's ICMP redirect (type 5) to web.
    expect(r[0].outputs.map((o) => [o.egress, o.frame[20]])).toEqual([[WEB, 5]]);
    // The drop itself leaves no evidence (kernel-unseen, matching the contract's filter-drop); web's
    // stack received only the redirect — not a local delivery of the packet.
    expect(r[0].reason).toBe(DROP_KERNEL_UNSEEN);
  },
  'multicast and limited broadcast from an inside host': ({ r, ct }) => {
    expect(r.map((x) => x.fate)).toEqual([FATE_DROPPED, FATE_DROPPED, FATE_DROPPED]);
    expect(r.every((x) => x.outputs.length === 0)).toBe(true);
    expect(ct).toEqual([]);
  },
  'in-window RST with an inexact sequence number (state kept for a challenge ACK)': ({ r, ct }) => {
    expect(egress(r[3])).toEqual([APP]); // the RST itself is accepted and NATed
    expect(r[3].ct).toBe(CT_ESTABLISHED);
    expect(egress(r[5])).toEqual([APP]);
    expect(ct[0]).toMatchObject({ state: 'ESTABLISHED', assured: true });
  },
  'RST below the expected sequence number with nf_conntrack_tcp_ignore_invalid_rst=1': ({ r, ct }) => {
    expect(r[3].ct).toBe(CT_ESTABLISHED);
    expect(egress(r[3])).toEqual([APP]);
    expect(ct[0]).toMatchObject({ state: 'ESTABLISHED', assured: true });
  },
  'out-of-window data and ACK are INVALID (not NATed)': ({ r, ct }) => {
    expect(r[3].ct).toBe(CT_INVALID);
    expect(egress(r[3])).toEqual([instancePoint(NAT)]); // un-NATed: to the NAT instance itself
    expect(r[4].ct).toBe(CT_INVALID);
    expect(r[4].reason).toBe(DROP_IGW_NO_PUBLIC_IP); // left with its private source address
    expect(r[5].ct).toBe(CT_ESTABLISHED);
    expect(egress(r[5])).toEqual([APP]);
    expect(ct[0]).toMatchObject({ state: 'ESTABLISHED', assured: true });
  },
  'out-of-window data and ACK with nf_conntrack_tcp_be_liberal=1 (accepted)': ({ r }) => {
    expect(r.slice(3).map((x) => x.ct)).toEqual([CT_ESTABLISHED, CT_ESTABLISHED, CT_ESTABLISHED]);
    expect(egress(r[3])).toEqual([APP]);
    expect(egress(r[4])).toEqual([NET]);
  },
  'retransmissions beyond nf_conntrack_tcp_max_retrans (timeout capped)': ({ r, ct }) => {
    expect(r.slice(3).every((x) => x.ct === CT_ESTABLISHED && egress(x)[0] === NET)).toBe(true);
    // The third copy reaches retrans 2 = max_retrans: timeout_max_retrans (100 s), not the
    // unacknowledged 200 s.
    expect(ct[0].timeout).toBeLessThanOrEqual(100);
  },
  'already-acknowledged data retransmitted is ignored (NATed)': ({ r, ct }) => {
    expect(r[9].ct).toBe(CT_ESTABLISHED);
    expect(egress(r[9])).toEqual([NET]);
    expect(ct[0]).toMatchObject({ state: 'ESTABLISHED', assured: true });
  },
  'window scaling: in window only when both SYNs carry the option': ({ r }) => {
    expect(r[3].ct).toBe(CT_ESTABLISHED);
    expect(egress(r[3])).toEqual([APP]);
    expect(r[7].ct).toBe(CT_INVALID);
  },
  'RST below the expected sequence number (invalid rst, not NATed)': ({ r, ct }) => {
    expect(r[3].ct).toBe(CT_INVALID);
    expect(egress(r[3])).toEqual([instancePoint(NAT)]);
    expect(ct[0]).toMatchObject({ state: 'ESTABLISHED', assured: true });
  },
  // SYN_SENT after the server's ignored data segment (seq 5000000, 45 bytes, ack 1001).
  "RST answering a challenge ACK in SYN_SENT (seq = the ignored ACK's ack: no window check)": ({ r }) => {
    expect(r[1].ct).toBe(CT_ESTABLISHED); // ignored, NATed back
    expect(r[2].ct).toBe(CT_ESTABLISHED); // accepted without the window step: the entry closes
    expect(r[3].ct).toBe(CT_NEW); // the next SYN re-opens the CLOSEd entry
  },
  'RST acking the ignored data after a SYN retransmission from the same side (INVALID)': ({ r, ct }) => {
    expect(r[2].ct).toBe(CT_ESTABLISHED);
    expect(r[3].ct).toBe(CT_INVALID); // not an answer to the SYN: the window check refuses its ack
    expect(ct[0]).toMatchObject({ state: 'SYN_SENT' });
  },
  'server RST acking the ignored data after a SYN retransmission (answers the SYN: no window check)': ({ r, ct }) => {
    expect(r[3].ct).toBe(CT_ESTABLISHED);
    expect(ct[0]).toMatchObject({ state: 'CLOSE' });
  },
  "server RST with seq = the ignored data's end and another ack after a SYN retransmission (INVALID)": ({ r, ct }) => {
    expect(r[3].ct).toBe(CT_INVALID);
    expect(ct[0]).toMatchObject({ state: 'SYN_SENT' });
  },
};

describe.skipIf(!pre.ok).concurrent('model vs kernel: issue 8 scenarios', () => {
  const cases = natCases();
  it('every case has a kernel check', () => {
    expect(cases.map((c) => c.name).filter((n) => !CHECKS[n])).toEqual([]);
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });
  for (const c of cases) {
    // A real-time case runs on its own within this file (no other kernel case of it beside it).
    (c.realTime === undefined ? it : it.sequential)(c.name, async () => {
      const k = await runCase(c);
      try {
        CHECKS[c.name](k);
      } catch (err) {
        if (c.realTime === undefined || k.maxLagMs <= REAL_TIME_LAG_MS) throw err;
        throw new Error(
          `${(err as Error).message}\n(the kernel lagged ${k.maxLagMs.toFixed(0)} ms behind the packets' times in all ${REAL_TIME_ATTEMPTS} attempts; this case depends on real time: ${c.realTime})`,
        );
      }
      const m = await runOn(createModelEngine(c.scenario, { seed: 1 }), c);
      const inputs = [...c.inputs, ...(c.after ?? [])];
      const cmp = compareRuns(
        inputs,
        { engine: 'model', results: m.r, conntrack: m.ct, counters: m.counters },
        { engine: 'kernel', results: k.r, conntrack: k.ct, counters: k.counters, normaliser: kernelOutputNormaliser },
        // The kernel's conntrack timeouts count down in real seconds (docs/kernel-differences.md E8).
        { scenario: c.scenario, timeouts: false },
      );
      const expected = EXPECTED_DIFFERENCES[c.name] ?? [];
      // The filter tables' per-rule counters too (iptables -L -v -n -x of the kernel's table).
      const messages = [...cmp.differences, ...compareCounters(m.filter, k.filter, ['model', 'kernel'], 'filter')].map(
        (d) => `${d.kind} ${d.message}`,
      );
      expect(messages.length, messages.join('\n')).toBe(expected.length);
      expected.forEach((re, i) => expect(messages[i]).toMatch(re));
    });
  }
});

// --- security groups and network ACLs: what the kernel does (then compared with the model) -------

const D = 'delivered';
const outcome = (x: PacketResult): string => (x.fate === FATE_DELIVERED ? D : `drop ${x.reason}`);
const SG = `drop ${DROP_SG_DENY}`;
const NACL = `drop ${DROP_NACL_DENY}`;
const ALLOWANCE = `drop ${DROP_SG_ALLOWANCE}`;

const FILTER_CHECKS: Record<string, (run: Run) => void> = {
  'SG inbound: only HTTPS from the far network passes': ({ r }) => expect(r.map(outcome)).toEqual([SG, D, SG]),
  'SG outbound deny: only tcp 443 out, DNS from app dropped at its ENI': ({ r }) =>
    // The SYN/ACK is the response of a tracked flow: it passes app's group without an inbound rule.
    expect(r.map(outcome)).toEqual([SG, D, D]),
  'SG tracked flow survives the removal of its rule (responses and further packets)': ({ r }) =>
    expect(r.map(outcome)).toEqual([D, D, D, SG]),
  'SG untracked flow (0.0.0.0/0 both ways) breaks when its rule is removed': ({ r }) =>
    expect(r.map(outcome)).toEqual([D, D, SG, D]),
  'SG untracked flow breaks when the outbound rule is removed (the reply is judged again)': ({ r }) =>
    // After the change the inbound rule no longer makes the flow untracked: a new SYN is tracked.
    expect(r.map(outcome)).toEqual([D, SG, D]),
  'SG rule referencing a security group: members pass, others do not': ({ r }) =>
    expect(r.map(outcome)).toEqual([D, SG, D]),
  'SG ICMP is always tracked: echo passes after its rule is removed, a new id does not': ({ r }) =>
    expect(r.map(outcome)).toEqual([D, D, D, SG]),
  'SG with no outbound rules: replies of tracked flows leave, nothing else does': ({ r }) =>
    expect(r.map(outcome)).toEqual([D, D, SG, SG]),
  'SG tracked-connection allowance: the third flow is dropped, tracked flows still pass': ({ r }) =>
    expect(r.map(outcome)).toEqual([D, D, ALLOWANCE, D]),
  'SG: a TCP header too short for port rules meets only the all-ports rules': ({ r }) =>
    expect(r.map(outcome)).toEqual([SG, D, D]),
  'SG on the NAT instance: the recommended NATSG passes HTTPS, drops DNS and ping': ({ r }) =>
    expect(r.map(outcome)).toEqual([D, D, SG, SG]),
  'NACL inbound deny: rule 100 denies ssh, rule 200 allows the rest': ({ r }) =>
    expect(r.map(outcome)).toEqual([NACL, D, D]),
  'NACL rule order: the lowest number wins': ({ r }) => expect(r.map(outcome)).toEqual([NACL, D]),
  'NACL without the ephemeral range: replies to the private subnet are dropped': ({ r }) =>
    expect(r.map(outcome)).toEqual([D, NACL]),
  'NACL with the ephemeral range: replies to the private subnet pass': ({ r }) =>
    expect(r.map(outcome)).toEqual([D, D]),
  'NACL outbound deny at the IGW: DNS through the NAT instance leaves no packet': ({ r, ct }) => {
    expect(r.map(outcome)).toEqual([NACL, D]);
    // The NAT instance's own entry was confirmed before the packet met the ACL.
    expect(ct.filter((c) => c.proto === 17)).toHaveLength(1);
  },
  "NACL outbound deny on the NAT instance's subnet: a filter REJECT's answers die at the ACL, the packets are still rejected":
    ({ r }) => {
      // Rejected at nat0's FORWARD; the port unreachable and the RST died at the public ACL.
      expect(r.map(outcome)).toEqual([`drop ${DROP_FILTER_REJECT}`, `drop ${DROP_FILTER_REJECT}`]);
      expect(r.map((x) => x.outputs.length)).toEqual([0, 0]);
    },
  'NACL between subnets, none inside a subnet': ({ r }) => expect(r.map(outcome)).toEqual([NACL, D]),
  'NACL ICMP type rule: echo requests pass, timestamp requests do not': ({ r }) =>
    expect(r.map(outcome)).toEqual([D, NACL]),
  'NACL entry changed mid-run: a flow allowed before is denied from the next packet': ({ r }) =>
    expect(r.map(outcome)).toEqual([D, D, NACL]),
  'SG and NACL together: the ACL is checked before the ENI': ({ r }) => expect(r.map(outcome)).toEqual([NACL, D, SG]),
};

describe.skipIf(!pre.ok).concurrent('model vs kernel: security groups and network ACLs', () => {
  const cases = filterCases();
  it('every case has a kernel check', () => {
    expect(cases.map((c) => c.name).filter((n) => !FILTER_CHECKS[n])).toEqual([]);
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });
  for (const c of cases) {
    // A real-time case runs on its own within this file (no other kernel case of it beside it).
    (c.realTime === undefined ? it : it.sequential)(c.name, async () => {
      const k = await runCase(c);
      FILTER_CHECKS[c.name](k);
      const m = await runOn(createModelEngine(c.scenario, { seed: 1 }), c);
      const cmp = compareRuns(
        c.inputs,
        { engine: 'model', results: m.r, conntrack: m.ct, counters: m.counters },
        { engine: 'kernel', results: k.r, conntrack: k.ct, counters: k.counters, normaliser: kernelOutputNormaliser },
        { scenario: c.scenario, timeouts: false },
      );
      const messages = cmp.differences.map((d) => `${d.kind} ${d.message}`);
      expect(messages, messages.join('\n')).toEqual([]);
    });
  }
});
