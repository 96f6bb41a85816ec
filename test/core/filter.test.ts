// The core's filter table (src/core/filter.ts, docs/semantics.md §13) against the reference model:
// every model-vs-kernel case with a filter table (test/oracle/cases.ts) and the bundled filter
// scenarios under a traffic mix that meets each of their rules — verdicts, reasons, output frames
// (REJECT's unreachables and resets byte for byte), conntrack tables, nat counters and the filter
// counters (rule by rule, policies included) must be equal.

import { describe, expect, it } from 'vitest';
import { createCoreEngine } from '../../src/core/engine.ts';
import { createModelEngine } from '../../src/model/index.ts';
import { compareCounters, compareRuns } from '../../src/diff/compare/compare.ts';
import { TimelineCursor, processWithTimeline } from '../../src/diff/timeline.ts';
import { compileScenarioObject, loadScenario, scenarioToObject } from '../../src/scenario/index.ts';
import { createCoreBatch, createCoreShared, Dataplane } from '../../src/core/bench-api.ts';
import { readFilterCounters } from '../../src/core/filter.ts';
import { resultFate, resultOutCount, resultReason } from '../../src/spec/frame-batch.ts';
import { filterIsEmpty } from '../../src/scenario/iptables-filter.ts';
import {
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  parseIpv4Addr as A,
  F_ACK,
  F_FIN,
  F_PSH,
  F_RST,
  F_SYN,
} from '../../src/packet/index.ts';
import type { Engine, FilterRuleCounter, InputPacket, PacketResult } from '../../src/spec/engine.ts';
import type { Scenario } from '../../src/spec/scenario.ts';
import { POINT_INTERNET, instancePoint } from '../../src/spec/scenario.ts';
import { natCases } from '../oracle/cases.ts';

async function run(
  engine: Engine,
  name: string,
  s: Scenario,
  inputs: InputPacket[],
  advanceToUs?: number,
  after?: InputPacket[],
) {
  try {
    const results = await processWithTimeline(engine, name, inputs, new TimelineCursor(s));
    if (advanceToUs !== undefined) {
      await engine.advance(advanceToUs);
      results.push(...(await engine.process(after ?? [])));
    }
    return {
      results,
      conntrack: await engine.conntrack(),
      counters: await engine.natCounters(),
      filter: (await engine.filterCounters?.()) ?? [],
    };
  } finally {
    await engine.close();
  }
}

/** Model and core (inline, and one worker thread when `threads`) on the same inputs: no difference. */
async function expectSame(s: Scenario, inputs: InputPacket[], advanceToUs?: number, after?: InputPacket[]) {
  const m = await run(createModelEngine(s), 'model', s, inputs, advanceToUs, after);
  const c = await run(createCoreEngine(s, { inline: true }), 'core', s, inputs, advanceToUs, after);
  const all = [...inputs, ...(after ?? [])];
  const cmp = compareRuns(
    all,
    { engine: 'model', results: m.results, conntrack: m.conntrack, counters: m.counters },
    { engine: 'core', results: c.results, conntrack: c.conntrack, counters: c.counters },
    { scenario: s, timeouts: true },
  );
  const diffs = cmp.differences.map((d) => `${d.kind} #${d.index} ${d.message}`);
  diffs.push(...compareCounters(m.filter, c.filter, ['model', 'core'], 'filter').map((d) => d.message));
  expect(diffs).toEqual([]);
  return { model: m, core: c };
}

describe('core filter table = model: the model-vs-kernel filter cases', () => {
  const cases = natCases().filter((c) => c.scenario.instances.some((i) => !filterIsEmpty(i.filter)));
  it('has filter cases to run', () => expect(cases.length).toBeGreaterThanOrEqual(7));
  for (const c of cases) {
    it(c.name, async () => {
      await expectSame(c.scenario, c.inputs, c.advanceToUs, c.after);
    });
  }
});

const SRV = A('198.51.100.7');
const NAT_EIP = A('203.0.113.10');

/** A mix meeting every kind of rule of the bundled filter scenarios: egress allowed and refused, INVALID, INPUT. */
function mix(s: Scenario): InputPacket[] {
  const idx = (n: string): number => s.instances.findIndex((i) => i.name === n);
  const APP = instancePoint(idx('app'));
  const app = s.instances[idx('app')].privateIp;
  const natIp = s.instances[idx('nat')].privateIp;
  const NET = POINT_INTERNET;
  const out: InputPacket[] = [];
  let t = 1_000_000;
  const add = (ingress: number, frame: Uint8Array, dt = 1000): void => {
    out.push({ timeUs: t, ingress, frame });
    t += dt;
  };
  // TCP to allowed and refused ports: SYN, SYN/ACK from the server, ACK, data, FIN.
  for (const [k, dport] of [80, 443, 25, 22, 8080, 3306].entries()) {
    const sport = 41000 + k;
    add(APP, buildTcp({ src: app, dst: SRV, sport, dport, flags: F_SYN, seq: 1000 }));
    add(
      NET,
      buildTcp({ src: SRV, dst: NAT_EIP, sport: dport, dport: sport, flags: F_SYN | F_ACK, seq: 5000, ack: 1001 }),
    );
    add(APP, buildTcp({ src: app, dst: SRV, sport, dport, flags: F_ACK, seq: 1001, ack: 5001 }));
    add(
      APP,
      buildTcp({
        src: app,
        dst: SRV,
        sport,
        dport,
        flags: F_ACK | F_PSH,
        seq: 1001,
        ack: 5001,
        payload: new Uint8Array(10),
      }),
    );
    add(APP, buildTcp({ src: app, dst: SRV, sport, dport, flags: F_FIN | F_ACK, seq: 1011, ack: 5001 }));
  }
  // INVALID: an ACK of no connection, an RST of no connection, SYN+FIN.
  add(APP, buildTcp({ src: app, dst: SRV, sport: 42000, dport: 80, flags: F_ACK, seq: 9, ack: 9 }));
  add(APP, buildTcp({ src: app, dst: SRV, sport: 42001, dport: 443, flags: F_RST, seq: 9 }));
  add(APP, buildTcp({ src: app, dst: SRV, sport: 42002, dport: 80, flags: F_SYN | F_FIN, seq: 9 }));
  // UDP: DNS allowed, others refused; the DNS reply.
  add(APP, buildUdp({ src: app, dst: SRV, sport: 43000, dport: 53 }));
  add(NET, buildUdp({ src: SRV, dst: NAT_EIP, sport: 53, dport: 43000 }));
  add(APP, buildUdp({ src: app, dst: SRV, sport: 43001, dport: 123 }));
  add(APP, buildUdp({ src: app, dst: SRV, sport: 43002, dport: 5353 }));
  // ICMP: echo out and back, a timestamp request (refused).
  add(APP, buildIcmpEcho({ src: app, dst: SRV, id: 7, seq: 1 }));
  add(NET, buildIcmpEcho({ src: SRV, dst: NAT_EIP, id: 7, seq: 1, reply: true }));
  // INPUT: ping, ssh, telnet to the NAT instance itself; from the internet to its EIP.
  add(APP, buildIcmpEcho({ src: app, dst: natIp, id: 9, seq: 1 }));
  add(APP, buildTcp({ src: app, dst: natIp, sport: 44000, dport: 22, flags: F_SYN, seq: 1 }));
  add(APP, buildTcp({ src: app, dst: natIp, sport: 44001, dport: 23, flags: F_SYN, seq: 1 }));
  add(NET, buildTcp({ src: SRV, dst: NAT_EIP, sport: 44002, dport: 22, flags: F_SYN, seq: 1 }));
  add(NET, buildTcp({ src: SRV, dst: NAT_EIP, sport: 44003, dport: 8080, flags: F_SYN, seq: 1 }));
  add(NET, buildUdp({ src: SRV, dst: NAT_EIP, sport: 44004, dport: 53 }));
  // TTL 1: the time exceeded meets filter OUTPUT.
  add(APP, buildUdp({ src: app, dst: SRV, sport: 43003, dport: 53, ttl: 1 }));
  // Established traffic again (the slow path every time).
  for (let k = 0; k < 3; k++) {
    add(APP, buildUdp({ src: app, dst: SRV, sport: 43000, dport: 53 }), 2_500_000);
    add(NET, buildUdp({ src: SRV, dst: NAT_EIP, sport: 53, dport: 43000 }));
  }
  return out;
}

describe('core filter table = model: the bundled filter scenarios', () => {
  for (const name of ['nat-instance-hardened', 'vpc-nat-instance-port-forward-filter']) {
    it(name, async () => {
      const s = loadScenario(`scenarios/${name}.yaml`);
      const { core } = await expectSame(s, mix(s));
      // The mix meets the table: something is dropped or rejected, something counted.
      expect(core.results.some((r) => r.reason !== 0)).toBe(true);
      expect(core.filter.some((c) => c.packets > 0)).toBe(true);
    });
  }
});

/** A Dataplane (one worker, this thread) beside the model, one packet at a time. */
async function fastRun(
  s: Scenario,
  packets: InputPacket[],
  layout: 'record' | 'line' = 'record',
): Promise<{
  fast: boolean[];
  model: PacketResult[];
  core: string[];
  filter: [FilterRuleCounter[], FilterRuleCounter[]];
}> {
  const shared = createCoreShared(s, { workers: 1, seed: 1, layout });
  const dp = new Dataplane(shared, 0);
  const model = createModelEngine(s, { seed: 1 });
  const fast: boolean[] = [];
  const core: string[] = [];
  const io = createCoreBatch(1, 2048);
  for (const p of packets) {
    io.batch.arena.set(p.frame, 0);
    io.batch.off[0] = 0;
    io.batch.len[0] = p.frame.length;
    io.batch.ingress[0] = p.ingress;
    io.batch.timeUs[0] = p.timeUs;
    io.batch.count = 1;
    const f0 = dp.fastCount;
    dp.processBatch(io.batch, io.out, io.idx, 0, 1);
    fast.push(dp.fastCount > f0);
    const w = io.out.result[0];
    core.push(resultFate(w) === 0 && resultOutCount(w) > 0 ? 'delivered' : `drop ${resultReason(w)}`);
  }
  const m = await model.process(packets);
  const filter: [FilterRuleCounter[], FilterRuleCounter[]] = [
    await model.filterCounters(),
    readFilterCounters(shared.compiled.filter, new Float64Array(shared.sabs.filtc), 1),
  ];
  return { fast, model: m, core, filter };
}

describe('core filter table: established sessions on the fast path', () => {
  const app = A('10.0.1.10');
  const flows = (s: Scenario, proto: 'udp' | 'tcp'): InputPacket[] => {
    const APP = instancePoint(s.instances.findIndex((i) => i.name === 'app'));
    const out: InputPacket[] = [];
    const o = (t: number, sport: number, flags = F_ACK) =>
      out.push({
        timeUs: t * 1000,
        ingress: APP,
        frame:
          proto === 'udp'
            ? buildUdp({ src: app, dst: SRV, sport, dport: 53, payload: new Uint8Array(8) })
            : buildTcp({ src: app, dst: SRV, sport, dport: 443, flags, seq: 1001, ack: 5001 }),
      });
    const b = (t: number, sport: number, flags = F_ACK) =>
      out.push({
        timeUs: t * 1000,
        ingress: POINT_INTERNET,
        frame:
          proto === 'udp'
            ? buildUdp({ src: SRV, dst: NAT_EIP, sport: 53, dport: sport, payload: new Uint8Array(8) })
            : buildTcp({ src: SRV, dst: NAT_EIP, sport: 443, dport: sport, flags, seq: 5001, ack: 1001 }),
      });
    for (const sport of [45000, 45001]) {
      if (proto === 'udp') {
        o(0, sport);
        b(1, sport);
        o(2500, sport);
        b(2600, sport);
      } else {
        out.push({
          timeUs: 0,
          ingress: APP,
          frame: buildTcp({ src: app, dst: SRV, sport, dport: 443, flags: F_SYN, seq: 1000 }),
        });
        out.push({
          timeUs: 1000,
          ingress: POINT_INTERNET,
          frame: buildTcp({
            src: SRV,
            dst: NAT_EIP,
            sport: 443,
            dport: sport,
            flags: F_SYN | F_ACK,
            seq: 5000,
            ack: 1001,
          }),
        });
        o(2, sport);
        b(3, sport);
      }
    }
    for (let t = 3000; t < 3020; t += 2) {
      o(t, 45000);
      b(t + 1, 45000);
      o(t, 45001, F_ACK | F_PSH);
    }
    out.sort((x, y) => x.timeUs - y.timeUs);
    return out;
  };

  for (const [proto, layout] of [
    ['udp', 'record'],
    ['tcp', 'record'],
    ['udp', 'line'],
    ['tcp', 'line'],
  ] as const)
    it(`hardened table, ${proto}, ${layout} layout: established packets take the fast path, counters as the model's`, async () => {
      const s = loadScenario('scenarios/nat-instance-hardened.yaml');
      const r = await fastRun(s, flows(s, proto), layout);
      expect(r.core).toEqual(
        r.model.map((m) => (m.fate === 0 && m.outputs.length > 0 ? 'delivered' : `drop ${m.reason}`)),
      );
      expect(r.fast.filter(Boolean).length).toBeGreaterThanOrEqual(20);
      expect(compareCounters(r.filter[0], r.filter[1], ['model', 'core'], 'filter').map((d) => d.message)).toEqual([]);
      // The fast path counted: FORWARD's ESTABLISHED rule saw every packet after the first.
      expect(r.filter[1].find((c) => c.chain === 'FORWARD' && c.rule === 1)!.packets).toBeGreaterThan(30);
    });

  it("a `! --syn` guard (flags every fast-path packet has alike) keeps the fast path, with the guard's counters", async () => {
    const s = loadScenario('scenarios/nat-instance-hardened.yaml');
    const o = scenarioToObject(s) as Record<string, any>;
    o.instances.nat.iptables = o.instances.nat.iptables.replace(
      '-A FORWARD -m conntrack --ctstate INVALID -j DROP',
      '-A FORWARD -p tcp -m tcp ! --syn -m conntrack --ctstate NEW -j DROP\n-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST,ACK,FIN ACK -j LOG\n-A FORWARD -m conntrack --ctstate INVALID -j DROP',
    );
    const f = compileScenarioObject(o, '<syn guard>');
    const r = await fastRun(f, flows(f, 'tcp'));
    expect(r.core).toEqual(
      r.model.map((m) => (m.fate === 0 && m.outputs.length > 0 ? 'delivered' : `drop ${m.reason}`)),
    );
    expect(r.fast.filter(Boolean).length).toBeGreaterThanOrEqual(20);
    expect(compareCounters(r.filter[0], r.filter[1], ['model', 'core'], 'filter').map((d) => d.message)).toEqual([]);
    // The LOG rule (ACK alone) counted every packet after the handshake, fast or not.
    expect(r.filter[1].find((c) => c.chain === 'FORWARD' && c.rule === 1)!.packets).toBeGreaterThan(30);
  });

  it('a table whose walk reads TCP flags keeps its TCP sessions on the slow path (flags vary per packet)', async () => {
    const s = loadScenario('scenarios/nat-instance-hardened.yaml');
    const o = scenarioToObject(s) as Record<string, any>;
    o.instances.nat.iptables = o.instances.nat.iptables.replace(
      '-A FORWARD -m conntrack --ctstate INVALID -j DROP',
      '-A FORWARD -p tcp -m tcp --tcp-flags PSH PSH -j LOG\n-A FORWARD -m conntrack --ctstate INVALID -j DROP',
    );
    const f = compileScenarioObject(o, '<flags>');
    const r = await fastRun(f, flows(f, 'tcp'));
    expect(r.fast.some(Boolean)).toBe(false);
    expect(compareCounters(r.filter[0], r.filter[1], ['model', 'core'], 'filter').map((d) => d.message)).toEqual([]);
    expect(r.filter[1].find((c) => c.chain === 'FORWARD' && c.rule === 0)!.packets).toBe(10);
  });
});
