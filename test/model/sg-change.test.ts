// Changing security-group rules and ACL entries mid-run (Engine.setFilterRules, docs/semantics.md
// §10): an untracked flow meets the new rules with its next packet and breaks; a tracked flow
// survives; a new ACL deny breaks both at once. The same on the model and the core (inline and on
// a worker thread).
import { afterEach, describe, expect, it } from 'vitest';
import { makeEngine, type EngineName } from '../../src/diff/engines.ts';
import { parseObject, baseObject } from '../scenario/helpers.ts';
import { buildTcp, parseIpv4Addr as ip, F_ACK, F_SYN } from '../../src/packet/index.ts';
import { FATE_DELIVERED, reasonName } from '../../src/spec/reasons.ts';
import type { Engine, PacketResult } from '../../src/spec/engine.ts';
import { POINT_INTERNET } from '../../src/spec/scenario.ts';

function scenarioObject(): Record<string, any> {
  const o = baseObject();
  o.instances.web = { subnet: 'public', privateIp: '10.0.0.20', elasticIp: '203.0.113.20', securityGroups: ['web'] };
  o.securityGroups = {
    web: {
      inbound: [
        { protocol: 'tcp', ports: 80, cidr: '0.0.0.0/0' }, // with outbound all: untracked
        { protocol: 'tcp', ports: 443, cidr: '198.51.100.0/24' }, // tracked
      ],
    },
  };
  o.networkAcls = {
    pub: {
      subnets: ['public'],
      inbound: [{ rule: 100, action: 'allow', protocol: 'all', cidr: '0.0.0.0/0' }],
      outbound: [{ rule: 100, action: 'allow', protocol: 'all', cidr: '0.0.0.0/0' }],
    },
  };
  return o;
}

const WEB = 3; // instances nat, app, web → point of web
const syn = (sport: number, dport: number, flags = F_SYN) =>
  buildTcp({ src: ip('198.51.100.7'), sport, dst: ip('203.0.113.20'), dport, flags, seq: 1, ack: 0 });
const reply = (sport: number, dport: number) =>
  buildTcp({
    src: ip('10.0.0.20'),
    sport: dport,
    dst: ip('198.51.100.7'),
    dport: sport,
    flags: F_SYN | F_ACK,
    seq: 9,
    ack: 2,
  });

function outcome(r: PacketResult): string {
  return r.fate === FATE_DELIVERED ? 'delivered' : reasonName(r.reason);
}

const engines: Array<[string, EngineName, Record<string, unknown>]> = [
  ['model', 'model', {}],
  ['core inline', 'core', { inline: true }],
  ['core on a worker thread', 'core', {}],
];

describe('mid-run rule changes', () => {
  let open: Engine | null = null;
  afterEach(async () => {
    await open?.close();
    open = null;
  });

  for (const [label, name, extra] of engines)
    it(`${label}: the untracked flow breaks, the tracked flow survives; an ACL deny breaks both`, async () => {
      const s = parseObject(scenarioObject());
      const e = await makeEngine(name, s, { seed: 1, workers: name === 'core' ? 1 : undefined, extra });
      open = e;
      expect(e.setFilterRules).toBeTypeOf('function');
      let t = 0;
      const send = async (frame: Uint8Array, ingress: number) =>
        outcome((await e.process([{ timeUs: (t += 1000), ingress, frame }]))[0]);
      expect(await send(syn(5000, 80), POINT_INTERNET)).toBe('delivered');
      expect(await send(reply(5000, 80), WEB)).toBe('delivered');
      expect(await send(syn(5001, 443), POINT_INTERNET)).toBe('delivered');
      expect(await send(reply(5001, 443), WEB)).toBe('delivered');
      // Remove both inbound rules.
      const o = scenarioObject();
      o.securityGroups.web.inbound = [];
      await e.setFilterRules!(parseObject(o));
      expect(await send(syn(5000, 80, F_ACK), POINT_INTERNET)).toBe('sg-deny');
      expect(await send(syn(5001, 443, F_ACK), POINT_INTERNET)).toBe('delivered');
      // web's own packets on the untracked flow still leave (outbound: all).
      expect(await send(reply(5000, 80), WEB)).toBe('delivered');
      // Put the port-80 rule back: the untracked flow works again.
      await e.setFilterRules!(parseObject(scenarioObject()));
      expect(await send(syn(5000, 80, F_ACK), POINT_INTERNET)).toBe('delivered');
      // An ACL deny entry (stateless) breaks the tracked flow too.
      const d = scenarioObject();
      d.networkAcls.pub.inbound.unshift({
        rule: 50,
        action: 'deny',
        protocol: 'tcp',
        ports: '1-65535',
        cidr: '198.51.100.0/24',
      });
      await e.setFilterRules!(parseObject(d));
      expect(await send(syn(5001, 443, F_ACK), POINT_INTERNET)).toBe('nacl-deny');
      expect(await send(syn(5000, 80, F_ACK), POINT_INTERNET)).toBe('nacl-deny');
    }, 30_000);

  it('a change of anything but rules and entries is refused, naming what', async () => {
    const s = parseObject(scenarioObject());
    for (const name of ['model', 'core'] as const) {
      const e = await makeEngine(name, s, { seed: 1, extra: name === 'core' ? { inline: true } : {} });
      const o = scenarioObject();
      delete o.instances.web.securityGroups;
      await expect(e.setFilterRules!(parseObject(o))).rejects.toThrow(
        /setFilterRules: the instances, their ENIs' security groups/,
      );
      const p = scenarioObject();
      p.networkAcls.pub.subnets = ['private'];
      await expect(e.setFilterRules!(parseObject(p))).rejects.toThrow(/network ACLs and their subnets cannot change/);
      await e.close();
    }
  });
});
