// Property: the filter table's fast path (docs/core.md "Filter table") counts and decides exactly
// as the model for random filter tables (the fuzzer's fuzzFilterTableArb, plus rules this test adds:
// --tcp-flags tests on flags that vary per packet (PSH, URG; ECE and CWR only in the traffic) and on flags that do not
// (SYN, RST, ACK, FIN), an ESTABLISHED accept, LOG rules that count on the way) and random traffic
// of two TCP and two UDP sessions: ACKs with random flags and payloads in both directions, now and
// then a FIN, an RST, a segment out of window, and pauses around the UDP timeouts. Model = core
// packet for packet (fate, reason, outputs) and every filter counter at the end, in both layouts;
// the established packets must have taken the fast path. The differential fuzzer's random tables
// rarely keep a session established long enough for its fast path to count much; this does.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCoreBatch, createCoreShared, Dataplane } from '../../src/core/bench-api.ts';
import { readFilterCounters } from '../../src/core/filter.ts';
import { createModelEngine } from '../../src/model/index.ts';
import { compareCounters } from '../../src/diff/compare/compare.ts';
import {
  F_ACK,
  F_CWR,
  F_ECE,
  F_FIN,
  F_PSH,
  F_RST,
  F_SYN,
  F_URG,
  buildTcp,
  buildUdp,
  parseIpv4Addr as A,
} from '../../src/packet/index.ts';
import { resultFate, resultOutCount, resultReason } from '../../src/spec/frame-batch.ts';
import { POINT_INTERNET, instancePoint } from '../../src/spec/scenario.ts';
import { type FuzzFilterRule, filterTableText, fuzzFilterTableArb } from '../../src/traffic/fuzz-filter-table.ts';
import { baseObject, parseObject } from '../scenario/helpers.ts';

const APP_IP = A('10.0.1.10');
const SRV = A('198.51.100.7');
const EIP = A('203.0.113.10');

/** Rules the random tables get on top of the fuzzer's: the flags tests and counters the fast path must get right. */
const EXTRA: FuzzFilterRule[] = [
  { chain: 'FORWARD', match: '-p tcp -m tcp --tcp-flags PSH PSH', target: 'LOG' },
  { chain: 'FORWARD', match: '-p tcp -m tcp --tcp-flags URG,PSH URG', target: 'ACCEPT' },
  { chain: 'FORWARD', match: '-p tcp -m tcp --tcp-flags ALL ACK,PSH', target: 'DROP' },
  { chain: 'FORWARD', match: '-p tcp -m tcp --tcp-flags ALL ACK', target: 'LOG' },
  { chain: 'FORWARD', match: '-p tcp -m tcp ! --syn -m conntrack --ctstate NEW', target: 'DROP' },
  { chain: 'FORWARD', match: '-p tcp -m tcp --tcp-flags SYN,RST,ACK,FIN ACK', target: 'LOG' },
  { chain: 'FORWARD', match: '-p tcp -m tcp --tcp-flags FIN,RST RST', target: 'LOG' },
  { chain: 'FORWARD', match: '-m conntrack --ctstate ESTABLISHED', target: 'ACCEPT' },
  { chain: 'FORWARD', match: '-m conntrack --ctstate RELATED,ESTABLISHED', target: 'ACCEPT' },
  { chain: 'FORWARD', match: '-s 10.0.1.0/24', target: 'LOG' },
  { chain: 'FORWARD', match: '-p udp -m udp --sport 53', target: 'LOG' },
  { chain: 'FORWARD', match: '', target: 'CHK' },
  { chain: 'CHK', match: '-p tcp -m tcp --tcp-flags ACK ACK', target: 'LOG' },
  { chain: 'CHK', match: '-d 198.51.100.0/24', target: 'RETURN' },
];

const tableArb = fc
  .tuple(
    fuzzFilterTableArb,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: EXTRA.length - 1 })), { maxLength: 5 }),
  )
  .map(([t, extra]) => {
    const rules = [...t.rules];
    for (const [at, k] of extra) rules.splice(at % (rules.length + 1), 0, EXTRA[k]);
    return { ...t, rules };
  });

function scenario(table: string) {
  const o = baseObject();
  o.instances.nat = {
    subnet: 'public',
    privateIp: '10.0.0.10',
    elasticIp: '203.0.113.10',
    sourceDestCheck: false,
    sysctls: { 'net.ipv4.ip_forward': 1 },
    iptables: `${table}*nat\n-A POSTROUTING -o eth0 -s 10.0.0.0/16 -j MASQUERADE\nCOMMIT\n`,
  };
  return parseObject(o);
}

const FLAGS = [
  F_ACK,
  F_ACK,
  F_ACK | F_PSH,
  F_ACK | F_PSH,
  F_ACK | F_URG,
  F_ACK | F_ECE,
  F_ACK | F_CWR,
  F_ACK | F_PSH | F_URG,
];

type Cmd = { flow: number; back: boolean; flags: number; pay: number; oow: boolean; gap: number };

const cmdArb: fc.Arbitrary<Cmd> = fc.record({
  flow: fc.integer({ min: 0, max: 3 }),
  back: fc.boolean(),
  flags: fc.oneof(
    { weight: 30, arbitrary: fc.constantFrom(...FLAGS) },
    { weight: 1, arbitrary: fc.constantFrom(F_ACK | F_FIN, F_RST, F_ACK | F_RST, F_SYN) },
  ),
  pay: fc.constantFrom(0, 0, 1, 10, 100, 700),
  oow: fc.integer({ min: 0, max: 40 }).map((x) => x === 0),
  gap: fc.oneof(
    { weight: 20, arbitrary: fc.constantFrom(0, 1, 10, 1000) },
    { weight: 1, arbitrary: fc.constantFrom(29_999, 30_001, 120_001) },
  ),
});

let fastTotal = 0;

async function run(layout: 'record' | 'line', table: string, cmds: Cmd[]): Promise<void> {
  const s = scenario(table);
  const shared = createCoreShared(s, { workers: 1, seed: 1, layout });
  const dp = new Dataplane(shared, 0);
  const model = createModelEngine(s, { seed: 1 });
  const app = instancePoint(s.instances.findIndex((i) => i.name === 'app'));
  const io = createCoreBatch(1, 2048);
  // Per flow: next sequence number of each side (orig, reply).
  const seq = [0, 1, 2, 3].map((f) => [1000 + f * 100_000, 5000 + f * 100_000]);
  const pre: Cmd[] = [];
  const hs = (flow: number, back: boolean, flags: number, gap = 1): Cmd => ({
    flow,
    back,
    flags,
    pay: 0,
    oow: false,
    gap,
  });
  for (let f = 0; f < 4; f++) {
    if (f < 2) pre.push(hs(f, false, F_SYN), hs(f, true, F_SYN | F_ACK), hs(f, false, F_ACK), hs(f, true, F_ACK));
    else pre.push(hs(f, false, 0), hs(f, true, 0), hs(f, false, 0, 2500), hs(f, true, 0));
  }
  let t = 0;
  for (const [k, c] of [...pre, ...cmds].entries()) {
    t += c.gap;
    const tcp = c.flow < 2;
    const sport = 45000 + c.flow;
    const dport = tcp ? 443 : 53;
    const d = c.back ? 1 : 0;
    const payload = new Uint8Array(c.pay);
    let frame: Uint8Array;
    if (tcp) {
      const sq = seq[c.flow][d] + (c.oow ? 0x4000_0000 : 0);
      const ack = (c.flags & F_ACK) !== 0 ? seq[c.flow][1 - d] : 0;
      const src = c.back ? SRV : APP_IP;
      const dst = c.back ? EIP : SRV;
      frame = buildTcp({
        src,
        dst,
        sport: c.back ? dport : sport,
        dport: c.back ? sport : dport,
        flags: c.flags,
        seq: sq >>> 0,
        ack,
        payload,
      });
      if (!c.oow) seq[c.flow][d] = (seq[c.flow][d] + c.pay + (c.flags & (F_SYN | F_FIN) ? 1 : 0)) >>> 0;
    } else {
      frame = c.back
        ? buildUdp({ src: SRV, dst: EIP, sport: dport, dport: sport, payload })
        : buildUdp({ src: APP_IP, dst: SRV, sport, dport, payload });
    }
    const ingress = c.back ? POINT_INTERNET : app;
    io.batch.arena.set(frame, 0);
    io.batch.off[0] = 0;
    io.batch.len[0] = frame.length;
    io.batch.ingress[0] = ingress;
    io.batch.timeUs[0] = t * 1000;
    io.batch.count = 1;
    const f0 = dp.fastCount;
    dp.processBatch(io.batch, io.out, io.idx, 0, 1);
    fastTotal += dp.fastCount - f0;
    const w = io.out.result[0];
    const core = `${resultFate(w)} ${resultReason(w)} ${resultOutCount(w)}`;
    const [m] = await model.process([{ timeUs: t * 1000, ingress, frame }]);
    const mod = `${m.fate} ${m.reason} ${m.outputs.length}`;
    expect(core, `command ${k} (${JSON.stringify(c)}) at t=${t} ms`).toBe(mod);
  }
  const diffs = compareCounters(
    await model.filterCounters(),
    readFilterCounters(shared.compiled.filter, new Float64Array(shared.sabs.filtc), 1),
    ['model', 'core'],
    'filter',
  ).map((x) => x.message);
  expect(diffs, 'filter counters').toEqual([]);
}

describe('filter table fast path: random tables and traffic (model = core)', () => {
  it.each(['record', 'line'] as const)(
    '%s layout',
    async (layout) => {
      fastTotal = 0;
      await fc.assert(
        fc.asyncProperty(tableArb, fc.array(cmdArb, { minLength: 5, maxLength: 80 }), (table, cmds) =>
          run(layout, filterTableText(table), cmds),
        ),
        { numRuns: 80, seed: 16 },
      );
      // The property is about the fast path: established packets of filtered sessions took it.
      expect(fastTotal).toBeGreaterThan(300);
    },
    180_000,
  );
});
