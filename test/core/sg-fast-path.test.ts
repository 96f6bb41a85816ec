// The core's fast path for sessions behind security groups and network ACLs (docs/core.md
// "Security groups and network ACLs"): established sessions whose every group is passed by a
// tracked flow take the fast path and refresh those flows lazily (the session's last-seen time;
// every reader of a flow's expiry folds it in) — the model agrees packet for packet, also after
// the groups' timeouts, at the allowance, when a response changes a flow's timeout, across a clock
// rebase, in both layouts and with two workers; a rule change sends them back to the slow path at
// once; untracked flows never take it.
import { afterEach, describe, expect, it } from 'vitest';
import { makeEngine } from '../../src/diff/engines.ts';
import type { CoreLayout } from '../../src/core/layout.ts';
import type { Engine } from '../../src/spec/engine.ts';
import { createCoreBatch, createCoreShared, Dataplane } from '../../src/core/bench-api.ts';
import { compileAwsFilters, updateAwsFilters } from '../../src/core/aws-filters.ts';
import { createModelEngine } from '../../src/model/index.ts';
import { buildUdp, parseIpv4Addr as A } from '../../src/packet/index.ts';
import { resultFate, resultOutCount, resultReason } from '../../src/spec/frame-batch.ts';
import type { InputPacket } from '../../src/spec/engine.ts';
import type { Scenario } from '../../src/spec/scenario.ts';
import { POINT_INTERNET, instancePoint } from '../../src/spec/scenario.ts';
import { baseObject, parseObject } from '../scenario/helpers.ts';

type Obj = Record<string, any>;

function scenarioObject(appInbound: Obj[] = []): Obj {
  const o = baseObject();
  o.securityGroups = {
    natsg: { inbound: [{ protocol: 'all', cidr: '10.0.0.0/16' }] },
    appsg: { inbound: appInbound },
  };
  o.instances.nat.securityGroups = ['natsg'];
  o.instances.nat.connectionTracking = { udp: 30, udpStream: 60 };
  o.instances.app.securityGroups = ['appsg'];
  o.instances.app.connectionTracking = { udp: 30, udpStream: 60 };
  const acl = {
    inbound: [
      { rule: 100, action: 'allow', protocol: 'all', cidr: '10.0.0.0/16' },
      { rule: 210, action: 'allow', protocol: 'udp', ports: '1024-65535', cidr: '0.0.0.0/0' },
    ],
    outbound: [{ rule: 100, action: 'allow', protocol: 'all', cidr: '0.0.0.0/0' }],
  };
  o.networkAcls = { priv: { subnets: ['private'], ...acl }, pub: { subnets: ['public'], ...acl } };
  return o;
}

const APP_IP = A('10.0.1.10');
const SRV = A('198.51.100.7');
const EIP = A('203.0.113.10');
const out = (sport: number) => buildUdp({ src: APP_IP, dst: SRV, sport, dport: 53, payload: new Uint8Array(8) });
const back = (sport: number) => buildUdp({ src: SRV, dst: EIP, sport: 53, dport: sport, payload: new Uint8Array(8) });

/** One Dataplane (one worker, this thread) and the model, packet by packet. */
class Pair {
  readonly shared;
  readonly dp;
  readonly model;
  readonly app: number;
  constructor(
    readonly scenario: Scenario,
    layout: CoreLayout = 'record',
  ) {
    this.shared = createCoreShared(scenario, { workers: 1, seed: 1, layout });
    this.dp = new Dataplane(this.shared, 0);
    this.model = createModelEngine(scenario, { seed: 1 });
    this.app = instancePoint(scenario.instances.findIndex((i) => i.name === 'app'));
  }
  /** Both engines' outcome of one packet ('delivered' or the drop reason number), and whether the core took its fast path. */
  async send(p: InputPacket): Promise<{ core: string; model: string; fast: boolean }> {
    const io = createCoreBatch(1, 256);
    io.batch.arena.set(p.frame, 0);
    io.batch.off[0] = 0;
    io.batch.len[0] = p.frame.length;
    io.batch.ingress[0] = p.ingress;
    io.batch.timeUs[0] = p.timeUs;
    io.batch.count = 1;
    const f0 = this.dp.fastCount;
    this.dp.processBatch(io.batch, io.out, io.idx, 0, 1);
    const w = io.out.result[0];
    const core = resultFate(w) === 0 && resultOutCount(w) > 0 ? 'delivered' : `drop ${resultReason(w)}`;
    const [m] = await this.model.process([p]);
    const model = m.fate === 0 && m.outputs.length > 0 ? 'delivered' : `drop ${m.reason}`;
    return { core, model, fast: this.dp.fastCount > f0 };
  }
  /** Many packets in one batch on each engine: their outcomes must agree; returns the fast-path count. */
  async sendMany(ps: InputPacket[]): Promise<number> {
    const io = createCoreBatch(ps.length, ps.length * 64);
    for (const [k, p] of ps.entries()) {
      io.batch.arena.set(p.frame, k * 64);
      io.batch.off[k] = k * 64;
      io.batch.len[k] = p.frame.length;
      io.batch.ingress[k] = p.ingress;
      io.batch.timeUs[k] = p.timeUs;
    }
    io.batch.count = ps.length;
    const f0 = this.dp.fastCount;
    this.dp.processBatch(io.batch, io.out, io.idx, 0, ps.length);
    const ms = await this.model.process(ps);
    for (let k = 0; k < ps.length; k++) {
      const w = io.out.result[k];
      const core = resultFate(w) === 0 && resultOutCount(w) > 0 ? 'delivered' : `drop ${resultReason(w)}`;
      const model = ms[k].fate === 0 && ms[k].outputs.length > 0 ? 'delivered' : `drop ${ms[k].reason}`;
      expect(core, `t=${ps[k].timeUs / 1000} ms`).toBe(model);
    }
    return this.dp.fastCount - f0;
  }
}

describe.each(['record', 'line'] as const)('core fast path behind security groups and ACLs (%s layout)', (layout) => {
  it('tracked sessions take it, refresh their flows past the groups timeouts, and agree with the model', async () => {
    const pair = new Pair(parseObject(scenarioObject()), layout);
    const ms = 1000;
    const seq: Array<[number, number, Uint8Array]> = [
      [0, pair.app, out(40000)],
      [1, POINT_INTERNET, back(40000)],
      [2500, pair.app, out(40000)],
      [2600, POINT_INTERNET, back(40000)],
    ];
    // Then every 40 s for 5 minutes: longer than the groups' 60 s stream timeout and the 30 s
    // one, so only refreshed flows survive.
    for (let t = 40_000; t <= 300_000; t += 40_000) {
      seq.push([t, pair.app, out(40000)], [t + 10, POINT_INTERNET, back(40000)]);
    }
    let fast = 0;
    for (const [t, ingress, frame] of seq) {
      const r = await pair.send({ timeUs: t * ms, ingress, frame });
      expect(r.core, `t=${t} ms`).toBe(r.model);
      expect(r.core).toBe('delivered');
      if (r.fast) fast++;
    }
    expect(fast).toBeGreaterThanOrEqual(10);
    // 61 s of silence: app's flow has expired in its group (app allows nothing in), the NAT
    // instance's Linux entry (udp stream 120 s) has not: the reply is refused at app's ENI.
    const r = await pair.send({ timeUs: 361_100 * ms, ingress: POINT_INTERNET, frame: back(40000) });
    expect(r.core).toBe(r.model);
    expect(r.fast).toBe(false);
    expect(r.core).not.toBe('delivered');
  });

  it('a rule change sends the session back to the slow path at once', async () => {
    const pair = new Pair(parseObject(scenarioObject()), layout);
    for (const [t, ingress, frame] of [
      [0, pair.app, out(41000)],
      [1, POINT_INTERNET, back(41000)],
      [2500, pair.app, out(41000)],
      [2600, POINT_INTERNET, back(41000)],
    ] as Array<[number, number, Uint8Array]>)
      await pair.send({ timeUs: t * 1000, ingress, frame });
    expect((await pair.send({ timeUs: 3_000_000, ingress: POINT_INTERNET, frame: back(41000) })).fast).toBe(true);
    // The private subnet's ACL loses its ephemeral range: the next reply is dropped.
    const o = scenarioObject();
    o.networkAcls.priv.inbound = o.networkAcls.priv.inbound.slice(0, 1);
    const next = parseObject(o);
    const aws = pair.shared.compiled.aws;
    const fresh = compileAwsFilters(next);
    expect(aws && fresh).toBeTruthy();
    if (!aws || !fresh) return;
    expect(updateAwsFilters(aws, fresh)).toBeNull();
    await pair.model.setFilterRules(next);
    const r = await pair.send({ timeUs: 3_100_000, ingress: POINT_INTERNET, frame: back(41000) });
    expect(r).toMatchObject({ fast: false, core: r.model });
    expect(r.core).not.toBe('delivered');
  });

  it('untracked flows never take it (every packet meets the rules)', async () => {
    // app open to 0.0.0.0/0 both ways: its flows are untracked at its ENI.
    const pair = new Pair(parseObject(scenarioObject([{ protocol: 'all', cidr: '0.0.0.0/0' }])), layout);
    let fast = 0;
    for (const [t, ingress, frame] of [
      [0, pair.app, out(42000)],
      [1, POINT_INTERNET, back(42000)],
      [2500, pair.app, out(42000)],
      [2600, POINT_INTERNET, back(42000)],
      [2700, pair.app, out(42000)],
      [2800, POINT_INTERNET, back(42000)],
    ] as Array<[number, number, Uint8Array]>) {
      const r = await pair.send({ timeUs: t * 1000, ingress, frame });
      expect(r.core).toBe(r.model);
      if (r.fast) fast++;
    }
    expect(fast).toBe(0);
  });

  it('a response by the slow path detaches a one-way owner: the flow becomes a stream exactly when the model says', async () => {
    const pair = new Pair(parseObject(scenarioObject()), layout);
    // One transaction (out, back), then requests only: the orig direction owns its flows alone
    // (unsettled, passed as requests) and refreshes them lazily with the 30 s UDP timeout.
    const seq: Array<[number, number, Uint8Array]> = [
      [0, pair.app, out(43000)],
      [1, POINT_INTERNET, back(43000)],
      [2500, pair.app, out(43000)],
    ];
    for (let t = 10_000; t <= 80_000; t += 10_000) seq.push([t, pair.app, out(43000)]);
    // Then 45 s without a packet: the one-transaction flows (30 s) are gone — the next request
    // starts new ones (a fast path that assumed the stream timeout would keep the old ones).
    seq.push(
      [125_000, pair.app, out(43000)],
      [125_010, POINT_INTERNET, back(43000)],
      [170_000, POINT_INTERNET, back(43000)],
    );
    seq.push([170_100, pair.app, out(43000)], [180_000, pair.app, out(43000)]);
    for (let t = 190_000; t <= 270_000; t += 10_000) seq.push([t, pair.app, out(43000)]);
    // A response (slow path): the second transaction — a stream now (app's 60 s), so it survives
    // 45 s of silence that the 30 s timeout would not; then both directions go fast again.
    seq.push([270_500, POINT_INTERNET, back(43000)], [315_400, POINT_INTERNET, back(43000)]);
    for (let t = 320_000; t <= 590_000; t += 45_000)
      seq.push([t, pair.app, out(43000)], [t + 20, POINT_INTERNET, back(43000)]);
    let fast = 0;
    for (const [t, ingress, frame] of seq) {
      const r = await pair.send({ timeUs: t * 1000, ingress, frame });
      expect(r.core, `t=${t} ms`).toBe(r.model);
      if (r.fast) fast++;
    }
    expect(fast).toBeGreaterThanOrEqual(12);
    // 60 s after app's last refresh (the reply at 590,020 ms): its flow is gone in both engines.
    const end = await pair.send({ timeUs: 650_020_000, ingress: POINT_INTERNET, frame: back(43000) });
    expect(end.core).toBe(end.model);
    expect(end.core).not.toBe('delivered');
  });

  it('the allowance sweep sees lazily refreshed flows alive and idle ones expired', async () => {
    const o = scenarioObject();
    // app's ENI: 2 tracked flows at most.
    o.instances.app.connectionTracking = { udp: 30, udpStream: 60, allowance: 2 };
    const pair = new Pair(parseObject(o), layout);
    const setup = (sport: number, t0: number): Array<[number, number, Uint8Array]> => [
      [t0, pair.app, out(sport)],
      [t0 + 1, POINT_INTERNET, back(sport)],
      [t0 + 2500, pair.app, out(sport)],
      [t0 + 2600, POINT_INTERNET, back(sport)],
    ];
    const seq = [...setup(44000, 0), ...setup(44001, 10)];
    // 44000 is kept alive on the fast path past app's 60 s stream timeout; 44001 stays idle.
    for (let t = 40_000; t <= 200_000; t += 40_000)
      seq.push([t, pair.app, out(44000)], [t + 10, POINT_INTERNET, back(44000)]);
    // A third flow: the allowance is full until the sweep removes 44001 (expired), never 44000.
    seq.push([200_100, pair.app, out(44002)], [200_200, POINT_INTERNET, back(44000)], [200_300, pair.app, out(44003)]);
    let fast = 0;
    for (const [t, ingress, frame] of seq) {
      const r = await pair.send({ timeUs: t * 1000, ingress, frame });
      expect(r.core, `t=${t} ms`).toBe(r.model);
      if (r.fast) fast++;
    }
    expect(fast).toBeGreaterThanOrEqual(6);
    // 44003 met the full allowance (44000 and 44002 alive).
    const last = await pair.send({ timeUs: 200_400_000, ingress: pair.app, frame: out(44004) });
    expect(last.core).toBe(last.model);
    expect(last.core).not.toBe('delivered');
  });

  it('a clock rebase (12.4 days of capture time) applies the pending refreshes first', async () => {
    // Groups' UDP stream timeout 60 s, Linux's 120 s: a 100 s gap ends the groups' flows, not the
    // NAT instance's session.
    const pair = new Pair(parseObject(scenarioObject()), layout);
    const REBASE_MS = 2 ** 30; // the worker's first base is 0: it rebases past 2^30 ms
    const ps: InputPacket[] = [
      { timeUs: 0, ingress: pair.app, frame: out(45000) },
      { timeUs: 1000, ingress: POINT_INTERNET, frame: back(45000) },
    ];
    // Every 50 s until just before the rebase: the fast path, refreshing lazily.
    let t = 2500;
    let last = t;
    for (; t < REBASE_MS - 60_000; t += 50_000) {
      last = t;
      ps.push(
        { timeUs: t * 1000, ingress: pair.app, frame: out(45000) },
        { timeUs: (t + 10) * 1000, ingress: POINT_INTERNET, frame: back(45000) },
      );
    }
    const fast = await pair.sendMany(ps);
    expect(fast).toBeGreaterThan(40_000);
    expect(pair.dp.clock.rebases).toBe(0);
    // 61-111 s later (the rebase happens at this packet): the groups' flows are gone — a new flow
    // out (allowed by the rules), and its reply 45 s later finds a fresh (30 s) flow expired.
    t = REBASE_MS + 1000;
    expect(t - last).toBeGreaterThan(60_000);
    expect(t - last).toBeLessThan(120_000);
    const r1 = await pair.send({ timeUs: t * 1000, ingress: pair.app, frame: out(45000) });
    expect(pair.dp.clock.rebases).toBe(1);
    expect(r1.core).toBe(r1.model);
    const r2 = await pair.send({ timeUs: (t + 10) * 1000, ingress: POINT_INTERNET, frame: back(45000) });
    expect(r2.core).toBe(r2.model);
    const r3 = await pair.send({ timeUs: (t + 45_000) * 1000, ingress: POINT_INTERNET, frame: back(45000) });
    expect(r3.core).toBe(r3.model);
    expect(r3.core).not.toBe('delivered');
  }, 120_000);
});

describe('engines: model, core inline and on two workers, both layouts', () => {
  const open: Engine[] = [];
  afterEach(async () => {
    for (const e of open.splice(0)) await e.close();
  });

  it('agree packet for packet on fast-path sessions behind groups and ACLs, across a rule change', async () => {
    const scenario = parseObject(scenarioObject());
    const app = instancePoint(scenario.instances.findIndex((i) => i.name === 'app'));
    const engines: Array<[string, Engine]> = [['model', createModelEngine(scenario, { seed: 1 })]];
    for (const layout of ['record', 'line'] as const) {
      engines.push([
        `core inline ${layout}`,
        await makeEngine('core', scenario, { seed: 1, layout, extra: { inline: true } }),
      ]);
      engines.push([`core 2 workers ${layout}`, await makeEngine('core', scenario, { seed: 1, layout, workers: 2 })]);
    }
    for (const [, e] of engines) open.push(e);
    const input: InputPacket[] = [];
    const ports = [46000, 46001, 46002, 46003, 46004, 46005];
    for (const [k, sp] of ports.entries()) {
      input.push(
        { timeUs: k * 1000, ingress: app, frame: out(sp) },
        { timeUs: k * 1000 + 1, ingress: POINT_INTERNET, frame: back(sp) },
      );
      input.push({ timeUs: 2_500_000 + k, ingress: app, frame: out(sp) });
    }
    // Sessions 0-3 talk every 40 s for 5 minutes (past the groups' 60 s), 4-5 fall silent.
    for (let t = 40_000; t <= 300_000; t += 40_000)
      for (const [k, sp] of ports.slice(0, 4).entries())
        input.push(
          { timeUs: (t + k) * 1000, ingress: app, frame: out(sp) },
          { timeUs: (t + k + 10) * 1000, ingress: POINT_INTERNET, frame: back(sp) },
        );
    const run = async (batch: InputPacket[]) => {
      const outs: string[][] = [];
      for (const [, e] of engines)
        outs.push((await e.process(batch)).map((r) => `${r.fate}/${r.reason}/${r.outputs.length}`));
      for (let i = 1; i < outs.length; i++) expect(outs[i], engines[i][0]).toEqual(outs[0]);
      return outs[0];
    };
    input.sort((a, b) => a.timeUs - b.timeUs);
    const first = await run(input);
    expect(first.filter((x) => x === '0/0/1').length).toBeGreaterThan(40);
    // The private subnet's ACL loses its ephemeral range: every reply is refused from now on.
    const o = scenarioObject();
    o.networkAcls.priv.inbound = o.networkAcls.priv.inbound.slice(0, 1);
    const next = parseObject(o);
    for (const [, e] of engines) await e.setFilterRules!(next);
    const after: InputPacket[] = [];
    for (const [k, sp] of ports.slice(0, 4).entries())
      after.push({ timeUs: (300_100 + k) * 1000, ingress: app, frame: out(sp) });
    for (const [k, sp] of ports.slice(0, 4).entries())
      after.push({ timeUs: (300_110 + k) * 1000, ingress: POINT_INTERNET, frame: back(sp) });
    const second = await run(after);
    expect(second.slice(0, 4)).toEqual(['0/0/1', '0/0/1', '0/0/1', '0/0/1']);
    expect(second.slice(4).filter((x) => x === '0/0/1')).toEqual([]);
  });
});
