// The nat INPUT hook (NF_INET_LOCAL_IN, a SRC manip): a new connection delivered to a NAT instance
// runs the INPUT chain — its SNAT rule, else nf_nat_alloc_null_binding — and a reply tuple that
// clashes with another connection's gets another source port (the kernel selftest
// nf_nat_edemux.sh, second part; docs/semantics.md §2 step 6b). Model and core must agree exactly
// (one core worker draws from the model's generator); the delivered frame is the one that reached
// the ENI.
import { describe, expect, it } from 'vitest';
import { createModelEngine } from '../../src/model/index.ts';
import { createCoreEngine } from '../../src/core/engine.ts';
import { buildUdp, parseIpv4Addr as A } from '../../src/packet/index.ts';
import { parseNatTable } from '../../src/scenario/index.ts';
import type { Engine, InputPacket } from '../../src/spec/engine.ts';
import type { Scenario } from '../../src/spec/scenario.ts';
import { CT_NEW, DROP_NAT_CLASH, FATE_DELIVERED, FATE_DROPPED, REASON_NONE } from '../../src/spec/reasons.ts';
import { APP, APP_IP, BASE, NAT, NAT_IP, natCases } from '../oracle/cases.ts';

const EDEMUX = 'nf_nat_edemux: two ports redirected to one local service from one client port (nat INPUT null binding)';

async function run(e: Engine, inputs: InputPacket[]) {
  try {
    const r = await e.process(inputs);
    return { r, ct: await e.conntrack(), counters: await e.natCounters() };
  } finally {
    await e.close();
  }
}

async function both(s: Scenario, inputs: InputPacket[]) {
  const m = await run(createModelEngine(s), inputs);
  const c = await run(createCoreEngine(s, { inline: true }), inputs);
  const strip = (x: typeof m) => ({
    r: x.r.map((p) => ({
      fate: p.fate,
      reason: p.reason,
      ct: p.ct,
      outputs: p.outputs.map((o) => [o.egress, [...o.frame]]),
    })),
    ct: x.ct,
    counters: [...x.counters].sort((a, b) => `${a.chain}${a.rule}`.localeCompare(`${b.chain}${b.rule}`)),
  });
  // Exactly the same: verdicts, frames, tables (the same port choices), counters.
  expect(strip(c)).toEqual(strip(m));
  return m;
}

function withNat(...rules: string[]): Scenario {
  const s = structuredClone(BASE);
  const text = ['*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
  text.push(':POSTROUTING ACCEPT [0:0]', ...rules, 'COMMIT', '');
  s.instances[NAT].nat = parseNatTable(text.join('\n'), '<test>');
  delete s.instances[NAT].security;
  return s;
}

const udp = (t: number, sport: number, dport: number): InputPacket => ({
  timeUs: t,
  ingress: APP,
  frame: buildUdp({ src: APP_IP, dst: NAT_IP, sport, dport, payload: new Uint8Array(4) }),
});

describe('nat INPUT: null binding and SNAT for connections delivered to the instance', () => {
  it('nf_nat_edemux part 2: redirected connections from one client port get other source ports', async () => {
    const c = natCases().find((x) => x.name === EDEMUX)!;
    const m = await both(c.scenario, c.inputs);
    expect(m.r.map((x) => x.fate)).toEqual(Array(4).fill(FATE_DELIVERED));
    expect(m.r.map((x) => x.ct)).toEqual([CT_NEW, CT_NEW, CT_NEW, CT_NEW]);
    // The output is the frame as it reached the ENI: not DNATed, not source-rewritten.
    m.r.forEach((x, i) => expect([...x.outputs[0].frame]).toEqual([...c.inputs[i].frame]));
    expect(m.ct).toHaveLength(3);
    const ports = [5201, 5202, 5203].map((d) => m.ct.find((e) => e.orig.dport === d)!.reply);
    for (const r of ports) expect(r).toMatchObject({ src: NAT_IP, sport: 5201, dst: APP_IP });
    expect(ports[0].dport).toBe(10000);
    expect(new Set(ports.map((r) => r.dport)).size).toBe(3);
  });

  it('without a clash the null binding keeps the source port', async () => {
    const m = await both(withNat(), [udp(0, 10000, 5201), udp(1000, 10000, 5202), udp(2000, 10001, 5201)]);
    expect(m.ct.map((e) => e.reply.dport).sort()).toEqual([10000, 10000, 10001]);
  });

  it('an INPUT SNAT rule maps the source of a delivered connection', async () => {
    const s = withNat('-A INPUT -s 10.0.1.10/32 -p udp -j SNAT --to-source 10.0.0.99:2000-2001');
    const m = await both(s, [udp(0, 10000, 5201), udp(1000, 10001, 5201), udp(2000, 10002, 5201)]);
    // Two ports for one address and destination: the third connection has none left (a clash at confirm).
    expect(m.r.map((x) => [x.fate, x.reason])).toEqual([
      [FATE_DELIVERED, REASON_NONE],
      [FATE_DELIVERED, REASON_NONE],
      [FATE_DROPPED, DROP_NAT_CLASH],
    ]);
    const replies = m.ct.map((e) => e.reply);
    expect(replies.map((r) => r.dst)).toEqual([A('10.0.0.99'), A('10.0.0.99')]);
    expect(replies.map((r) => r.dport).sort()).toEqual([2000, 2001]);
    expect(m.counters.find((x) => x.instance === NAT && x.chain === 'INPUT' && x.rule === 0)?.packets).toBe(3);
  });
});
