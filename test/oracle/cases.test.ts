// Issue 8's scenario list on the real kernel: what Linux does in each (the kernel half of the
// model-vs-kernel suite). Needs root and the tools; skipped with the reason otherwise.
import { describe, expect, it } from 'vitest';
import { checkKernelPrerequisites, createKernelEngine, type KernelPacketResult } from '../../src/oracle/index.ts';
import { PacketView, parseIpv4, PARSE_OK, verifyIpv4Header, verifyL4Checksum } from '../../src/packet/index.ts';
import {
  CT_ESTABLISHED, CT_INVALID, CT_NEW, CT_RELATED, DROP_IGW_NO_PUBLIC_IP, DROP_IP_FORWARD_OFF, DROP_NAT_CLASH,
  DROP_SRC_DST_CHECK_DST, DROP_TTL_EXCEEDED, FATE_DELIVERED, FATE_DROPPED,
} from '../../src/spec/reasons.ts';
import type { ConntrackEntry, NatRuleCounter } from '../../src/spec/engine.ts';
import { instancePoint } from '../../src/spec/scenario.ts';
import { APP, APP_IP, NAT, NAT_EIP, NAT_IP, NET, SRV, WEB, WEB_EIP, WEB_IP, natCases, type NatCase } from './cases.ts';

const pre = await checkKernelPrerequisites();
if (!pre.ok) console.warn(`test/oracle/cases.test.ts skipped: ${pre.missing.join('; ')}`);

interface Run {
  r: KernelPacketResult[];
  ct: ConntrackEntry[];
  counters: NatRuleCounter[];
}

async function runCase(c: NatCase): Promise<Run> {
  const e = await createKernelEngine(c.scenario, { maxWaitMs: 5000 });
  try {
    const r = await e.process(c.inputs);
    if (c.advanceToUs !== undefined) {
      await e.advance(c.advanceToUs);
      r.push(...(await e.process(c.after ?? [])));
    }
    return { r, ct: await e.conntrack(), counters: await e.natCounters() };
  } finally {
    await e.close();
  }
}

const pv = new PacketView();
function view(b: Uint8Array): PacketView {
  expect(parseIpv4(b, 0, b.length, pv)).toBe(PARSE_OK);
  expect(verifyIpv4Header(b, pv)).toBe(true);
  expect(verifyL4Checksum(b, pv)).toBe(true);
  return pv;
}
const egress = (x: KernelPacketResult): number[] => x.outputs.map((o) => o.egress);
const counter = (run: Run, chain: string, rule: number): number => run.counters.find((c) => c.instance === NAT && c.chain === chain && c.rule === rule)?.packets ?? -1;

const CHECKS: Record<string, (run: Run) => void> = {
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
  'TTL 1 through the NAT instance': ({ r, ct }) => {
    expect(r[0]).toMatchObject({ fate: FATE_DROPPED, reason: DROP_TTL_EXCEEDED });
    expect(egress(r[0])).toEqual([APP]);
    expect(view(r[0].outputs[0].frame).icmpType).toBe(11);
    expect(ct).toEqual([]);
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
};

describe.skipIf(!pre.ok).concurrent('issue 8 scenarios on the kernel', () => {
  const cases = natCases();
  it('every case has a kernel check', () => {
    expect(cases.map((c) => c.name).filter((n) => !CHECKS[n])).toEqual([]);
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });
  for (const c of cases) {
    it(c.name, async () => {
      CHECKS[c.name](await runCase(c));
    });
  }
});
