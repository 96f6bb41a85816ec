// Property: the security groups' lazy fast path (docs/core.md "Security groups and network ACLs")
// computes exactly the model's verdicts for random traffic through a typical group + ACL setup —
// a few UDP sessions in random directions, pauses around every tracking timeout (30 s single
// transaction, 60 s stream, Linux's 120 s), tiny allowances, and random mid-run rule changes
// (fuzz-filters.ts mutateFilters: rules removed, added, ACL entries flipped). The differential
// fuzzer's random groups and ACLs rarely let a session reach the fast path; this does, in both
// layouts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCoreBatch, createCoreShared, Dataplane } from '../../src/core/bench-api.ts';
import { compileAwsFilters, updateAwsFilters } from '../../src/core/aws-filters.ts';
import { createModelEngine } from '../../src/model/index.ts';
import { buildUdp, parseIpv4Addr as A } from '../../src/packet/index.ts';
import { resultFate, resultOutCount, resultReason } from '../../src/spec/frame-batch.ts';
import { POINT_INTERNET, instancePoint } from '../../src/spec/scenario.ts';
import { mutateFilters } from '../../src/traffic/fuzz-filters.ts';
import { baseObject, parseObject } from '../scenario/helpers.ts';

const APP_IP = A('10.0.1.10');
const SRV = A('198.51.100.7');
const EIP = A('203.0.113.10');

function scenario(allowance: number) {
  const o = baseObject();
  o.securityGroups = {
    natsg: { inbound: [{ protocol: 'all', cidr: '10.0.0.0/16' }] },
    appsg: { inbound: [] },
  };
  o.instances.nat.securityGroups = ['natsg'];
  o.instances.nat.connectionTracking = { udp: 30, udpStream: 60 };
  o.instances.app.securityGroups = ['appsg'];
  o.instances.app.connectionTracking = { udp: 30, udpStream: 60, allowance };
  const acl = {
    inbound: [
      { rule: 100, action: 'allow', protocol: 'all', cidr: '10.0.0.0/16' },
      { rule: 210, action: 'allow', protocol: 'udp', ports: '1024-65535', cidr: '0.0.0.0/0' },
    ],
    outbound: [{ rule: 100, action: 'allow', protocol: 'all', cidr: '0.0.0.0/0' }],
  };
  o.networkAcls = { priv: { subnets: ['private'], ...acl }, pub: { subnets: ['public'], ...acl } };
  return parseObject(o);
}

/** Pauses (ms): mostly short (sessions stay on the fast path), some around the tracking timeouts (30 s, 60 s, Linux's UDP stream 120 s). */
const gapArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(0, 1, 10, 1000, 5000, 10_000, 20_000) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(29_999, 30_000, 30_001, 45_000, 59_999, 60_000, 60_001, 90_000, 121_000),
  },
);

type Cmd =
  | { kind: 'send'; flow: number; back: boolean; gap: number }
  | { kind: 'rules'; target: number; op: number; pick: number; gap: number };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 20,
    arbitrary: fc.record({
      kind: fc.constant('send' as const),
      flow: fc.integer({ min: 0, max: 3 }),
      back: fc.boolean(),
      gap: gapArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('rules' as const),
      target: fc.nat(),
      op: fc.nat(),
      pick: fc.nat(),
      gap: gapArb,
    }),
  },
);

let fastTotal = 0;

async function run(layout: 'record' | 'line', allowance: number, cmds: Cmd[]): Promise<void> {
  let current = scenario(allowance);
  const shared = createCoreShared(current, { workers: 1, seed: 1, layout });
  const dp = new Dataplane(shared, 0);
  const model = createModelEngine(current, { seed: 1 });
  const app = instancePoint(current.instances.findIndex((i) => i.name === 'app'));
  const io = createCoreBatch(1, 256);
  let t = 0;
  // Every session starts as a stream (out, back, out 2.5 s later, back): the fast path's way in.
  const pre: Cmd[] = [];
  for (let f = 0; f < 4; f++)
    pre.push(
      { kind: 'send', flow: f, back: false, gap: 1 },
      { kind: 'send', flow: f, back: true, gap: 1 },
      { kind: 'send', flow: f, back: false, gap: 2500 },
      { kind: 'send', flow: f, back: true, gap: 1 },
    );
  for (const [k, c] of [...pre, ...cmds].entries()) {
    t += c.gap;
    if (c.kind === 'rules') {
      const next = mutateFilters(current, c.target, c.op, c.pick);
      if (!next) continue;
      const aws = shared.compiled.aws;
      const fresh = compileAwsFilters(next.scenario);
      if (!aws || !fresh || updateAwsFilters(aws, fresh) !== null) continue;
      await model.advance(t * 1000);
      await model.setFilterRules(next.scenario);
      current = next.scenario;
      continue;
    }
    const sport = 50000 + c.flow;
    const frame = c.back
      ? buildUdp({ src: SRV, dst: EIP, sport: 53, dport: sport, payload: new Uint8Array(8) })
      : buildUdp({ src: APP_IP, dst: SRV, sport, dport: 53, payload: new Uint8Array(8) });
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
    const core = resultFate(w) === 0 && resultOutCount(w) > 0 ? 'delivered' : `drop ${resultReason(w)}`;
    const [m] = await model.process([{ timeUs: t * 1000, ingress, frame }]);
    const mod = m.fate === 0 && m.outputs.length > 0 ? 'delivered' : `drop ${m.reason}`;
    expect(core, `command ${k} (${JSON.stringify(c)}) at t=${t} ms`).toBe(mod);
  }
}

describe('security groups fast path: random traffic and rule changes (model = core)', () => {
  it.each(['record', 'line'] as const)(
    '%s layout',
    async (layout) => {
      fastTotal = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(2, 3, 262144, 262144, 262144, 262144),
          fc.array(cmdArb, { minLength: 5, maxLength: 60 }),
          (al, cmds) => run(layout, al, cmds),
        ),
        { numRuns: 60, seed: 16 },
      );
      // The property is about the fast path: its packets must have taken it (rule changes and tiny
      // allowances break many sessions for the rest of their run, as they should).
      expect(fastTotal).toBeGreaterThan(150);
    },
    120_000,
  );
});
