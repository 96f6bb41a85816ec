// The kernel engine's fast path ('batch': one pinned helper, fences, many packets per round trip)
// against the original one-at-a-time path ('single'), on every oracle case and on a mixed
// workload whose packets depend on each other (same flows, one port pool, a hairpin mid-batch):
// verdicts, conntrack classification, evidence, output frames (up to the consistent port renaming
// that two kernel runs always need, docs/kernel-differences.md E9), conntrack tables and nat
// counters must be the same. Needs root and the tools; skipped with the reason otherwise.
import { TimelineCursor, processWithTimeline } from '../../src/diff/timeline.ts';
import { describe, expect, it } from 'vitest';
import {
  checkKernelPrerequisites,
  createKernelEngine,
  kernelOutputNormaliser,
  type KernelEngine,
  type KernelInjection,
  type KernelPacketResult,
} from '../../src/oracle/index.ts';
import { compareRuns } from '../../src/diff/compare/compare.ts';
import { buildTcp, buildUdp, parseIpv4Addr as A, F_SYN } from '../../src/packet/index.ts';
import type { ConntrackEntry, InputPacket, NatRuleCounter } from '../../src/spec/engine.ts';
import { FATE_DELIVERED } from '../../src/spec/reasons.ts';
import { BASE, APP, NET, WEB, natCases, type NatCase } from './cases.ts';

const pre = await checkKernelPrerequisites();
if (!pre.ok) console.warn(`test/oracle/fast-path.test.ts skipped: ${pre.missing.join('; ')}`);

interface Run {
  r: KernelPacketResult[];
  ct: ConntrackEntry[];
  counters: NatRuleCounter[];
  engine: KernelEngine;
}

async function runCase(c: NatCase, injection: KernelInjection): Promise<Run> {
  // The one-at-a-time reference gets a 20 ms quiet time: its default 3 ms is a guess that a
  // loaded machine can beat (a frame later than that is not attributed, and the case differs).
  const e = await createKernelEngine(c.scenario, {
    maxWaitMs: 5000,
    injection,
    settleMs: injection === 'single' ? 20 : undefined,
  });
  try {
    expect(e.injection).toBe(injection);
    // Scenario timelines: the inputs split at the event times, each event applied in between.
    const r = (await processWithTimeline(
      e,
      'kernel',
      c.inputs,
      new TimelineCursor(c.scenario),
    )) as KernelPacketResult[];
    if (c.advanceToUs !== undefined) {
      await e.advance(c.advanceToUs);
      r.push(...(await e.process(c.after ?? [])));
    }
    return { r, ct: await e.conntrack(), counters: await e.natCounters(), engine: e };
  } finally {
    await e.close();
  }
}

function expectSame(c: NatCase, single: Run, batch: Run): void {
  const inputs = [...c.inputs, ...(c.after ?? [])];
  const cmp = compareRuns(
    inputs,
    {
      engine: 'single',
      results: single.r,
      conntrack: single.ct,
      counters: single.counters,
      normaliser: kernelOutputNormaliser,
    },
    {
      engine: 'batch',
      results: batch.r,
      conntrack: batch.ct,
      counters: batch.counters,
      normaliser: kernelOutputNormaliser,
    },
    { scenario: c.scenario, timeouts: false },
  );
  expect(cmp.differences.map((d) => `${d.kind} ${d.message}`)).toEqual([]);
  // nl_localout records a host's own answer (port unreachable, ...) that natlab drops before it
  // leaves: Linux rate-limits those ICMP answers per destination and globally (K2), so how many
  // exist depends on real time, and the fast path packs the same packets into far less of it.
  // The same holds for the rate limits' refusal counters (icmp_ratelimit_*, docs/semantics.md §6).
  const ev = (r: Run): string[][] =>
    r.r.map((x) => x.evidence.filter((e) => !e.endsWith(':nl_localout') && !e.includes(':icmp_ratelimit_')));
  expect(ev(batch)).toEqual(ev(single));
  expect(batch.r.map((x) => x.outputs.map((o) => o.adjustments))).toEqual(
    single.r.map((x) => x.outputs.map((o) => o.adjustments)),
  );
  expect(single.engine.lateFrames).toBe(0);
  expect(batch.engine.lateFrames).toBe(0);
  expect(batch.engine.lagMs).toHaveLength(inputs.length);
}

describe.skipIf(!pre.ok).concurrent('kernel fast path = one at a time', () => {
  for (const c of natCases()) {
    // A case whose outcome depends on real time between packets (the ICMP rate limits) cannot be
    // the same on the one-at-a-time path, which is seconds slower.
    it.skipIf(c.realTime !== undefined)(c.name, async () => {
      const single = await runCase(c, 'single');
      const batch = await runCase(c, 'batch');
      expectSame(c, single, batch);
    });
  }

  it('a mixed workload of dependent packets (shared flows, one port pool, a hairpin mid-batch)', async () => {
    const inputs: InputPacket[] = [];
    const SRV = A('198.51.100.7');
    // One original and at most one reply per flow: nothing here depends on real time (a UDP flow
    // becomes ASSURED on a packet 2 real seconds after its first, and the one-at-a-time path is
    // seconds slower than the fast one).
    for (let k = 0; k < 150; k++) {
      const t = k * 10;
      // Two private hosts use the same source port: the second of each pair is renamed by the NAT.
      inputs.push({
        timeUs: t,
        ingress: APP,
        frame: buildUdp({ src: A('10.0.1.10'), dst: SRV, sport: 3000 + k, dport: 53 }),
      });
      inputs.push({
        timeUs: t,
        ingress: WEB,
        frame: buildUdp({ src: A('10.0.0.20'), dst: SRV, sport: 3000 + k, dport: 53 }),
      });
      // A reply to the NAT's public address (every third to a port nobody holds: unsolicited).
      inputs.push({
        timeUs: t + 1,
        ingress: NET,
        frame: buildUdp({ src: SRV, dst: A('203.0.113.10'), sport: 53, dport: k % 3 ? 3000 + k : 2000 + k }),
      });
      if (k % 25 === 7) {
        // The app host talks to the web server's Elastic IP: out through the NAT, back in by the IGW.
        inputs.push({
          timeUs: t + 2,
          ingress: APP,
          frame: buildTcp({
            src: A('10.0.1.10'),
            dst: A('203.0.113.20'),
            sport: 5000 + k,
            dport: 80,
            flags: F_SYN,
            seq: k,
          }),
        });
      }
    }
    const c: NatCase = { name: 'mixed', scenario: BASE, inputs };
    const single = await runCase(c, 'single');
    const batch = await runCase(c, 'batch');
    expectSame(c, single, batch);
    expect(batch.r.filter((x) => x.outputs.some((o) => o.egress === WEB)).length).toBeGreaterThan(0);
  });

  it('instance counters (ICMP rate limits) are read only after packets that crossed the instance, and stay with their packet', async () => {
    // The fast path reads an instance's conntrack statistics and /proc/net/snmp only after a packet
    // that put a frame on its link (docs/kernel-oracle.md "The cost of the ICMP rate-limit
    // evidence"). TTL-1 packets through the NAT, whose time exceeded the rate limit refuses after
    // a burst of 6, alternate with packets from the web server that never reach the NAT instance:
    // every refusal must be evidence of its own TTL-1 packet, never of a neighbour.
    const base = natCases().find((c) => c.name.startsWith('ICMP rate limit: a burst'));
    if (!base) throw new Error('oracle case "ICMP rate limit: a burst ..." is gone');
    const SRV = A('198.51.100.7');
    const inputs: InputPacket[] = [];
    for (let k = 0; k < 10; k++) {
      inputs.push({
        timeUs: k * 1000,
        ingress: APP,
        frame: buildUdp({ src: A('10.0.1.10'), dst: SRV, sport: 40100 + k, dport: 53, ttl: 1 }),
      });
      inputs.push({
        timeUs: k * 1000 + 1,
        ingress: WEB,
        frame: buildUdp({ src: A('10.0.0.20'), dst: SRV, sport: 40100 + k, dport: 53 }),
      });
    }
    const e = await createKernelEngine(base.scenario, { maxWaitMs: 5000, injection: 'batch' });
    try {
      const r = await e.process(inputs);
      const limited = (x: KernelPacketResult): boolean => x.evidence.some((v) => v.includes(':icmp_ratelimit_'));
      const ttl1 = r.filter((_, k) => k % 2 === 0);
      const web = r.filter((_, k) => k % 2 === 1);
      // A TTL-1 packet is answered (one time exceeded) or refused (the evidence), never both or neither.
      expect(ttl1.map((x) => (x.outputs.length === 1) !== limited(x))).toEqual(Array(10).fill(true));
      // Six answers at once (per-destination burst); a refill of one per second may add one more.
      const answered = ttl1.filter((x) => x.outputs.length === 1).length;
      expect(answered).toBeGreaterThanOrEqual(6);
      expect(answered).toBeLessThanOrEqual(7);
      expect(web.map((x) => [x.fate, limited(x)])).toEqual(Array(10).fill([FATE_DELIVERED, false]));
    } finally {
      await e.close();
    }
  });
});
