// The core's fast path for sessions behind security groups and network ACLs (docs/core.md
// "Security groups and network ACLs"): established sessions whose every group is passed by a
// tracked flow take the fast path, refresh those flows exactly as the slow path would (the model
// agrees packet for packet, also after the groups' timeouts), and a rule change sends them back
// to the slow path at once; untracked flows never take it.
import { describe, expect, it } from 'vitest';
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
  constructor(readonly scenario: Scenario) {
    this.shared = createCoreShared(scenario, { workers: 1, seed: 1 });
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
}

describe('core fast path behind security groups and ACLs', () => {
  it('tracked sessions take it, refresh their flows past the groups timeouts, and agree with the model', async () => {
    const pair = new Pair(parseObject(scenarioObject()));
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
    const pair = new Pair(parseObject(scenarioObject()));
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
    const pair = new Pair(parseObject(scenarioObject([{ protocol: 'all', cidr: '0.0.0.0/0' }])));
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
});
