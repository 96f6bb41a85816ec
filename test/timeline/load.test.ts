// The scenario file's `timeline:` key (docs/scenarios.md "Timeline"): events in time order, each
// checked against the VPC as the earlier events left it; errors name the event's index and field.
import { describe, expect, it } from 'vitest';
import { expectFirstError, parseObject } from '../scenario/helpers.ts';
import { haObject } from './helpers.ts';
import { eventTimeUs } from '../../src/spec/timeline.ts';

describe('scenario timeline', () => {
  it('compiles every kind of event with its time and a one-line text', () => {
    const o = haObject([
      { at: 1.5, stopInstance: 'nat' },
      { at: 2, replaceRoute: { routeTable: 'private', destination: '0.0.0.0/0', target: 'eni:natb' } },
      { at: 3, startInstance: 'nat' },
      { at: 4, moveEni: { from: 'nat', to: 'natb' } },
      { at: 5, moveElasticIp: { from: 'natb', to: 'spare' } },
    ]);
    const s = parseObject(o);
    expect(s.timeline!.map((e) => e.text)).toEqual([
      'stopInstance nat',
      'replaceRoute private 0.0.0.0/0 → eni:natb',
      'startInstance nat',
      'moveEni nat → natb',
      'moveElasticIp natb → spare',
    ]);
    expect(eventTimeUs(s.timeline![0], 10_000_000)).toBe(11_500_000);
    expect(s.timeline![1].action).toEqual({
      kind: 'replaceRoute',
      routeTable: 1,
      route: 1,
      target: 'eni',
      targetIndex: 2,
    });
  });

  it('takes absolute ISO times', () => {
    const s = parseObject(haObject([{ at: '2026-12-04T21:00:00.25Z', stopInstance: 'nat' }]));
    expect(s.timeline![0].absolute).toBe(true);
    expect(eventTimeUs(s.timeline![0], 0)).toBe(Date.parse('2026-12-04T21:00:00Z') * 1000 + 250_000);
  });

  it('changes security-group rules and ACL entries (the rest of the group stays)', () => {
    const o = haObject([
      {
        at: 1,
        setSecurityGroupRules: { group: 'natsg', inbound: [{ protocol: 'tcp', ports: 443, cidr: '10.0.1.0/24' }] },
      },
      { at: 2, setNetworkAclEntries: { acl: 'pub', outbound: [] } },
    ]);
    o.securityGroups = { natsg: { inbound: [{ protocol: 'all', cidr: '10.0.0.0/16' }] } };
    o.instances.nat.securityGroups = ['natsg'];
    o.networkAcls = {
      pub: {
        subnets: ['public'],
        inbound: [{ rule: 100, action: 'allow', protocol: 'all', cidr: '0.0.0.0/0' }],
        outbound: [{ rule: 100, action: 'allow', protocol: 'all', cidr: '0.0.0.0/0' }],
      },
    };
    const s = parseObject(o);
    const [a, b] = s.timeline!.map((e) => e.action);
    if (a.kind !== 'setFilterRules' || b.kind !== 'setFilterRules') throw new Error('kind');
    expect(a.securityGroups[0].inbound).toHaveLength(1);
    expect(a.securityGroups[0].inbound[0].portLo).toBe(443);
    expect(a.networkAcls[0].outbound).toHaveLength(1);
    expect(b.securityGroups[0].inbound[0].portLo).toBe(443); // the earlier change stays
    expect(b.networkAcls[0].outbound).toHaveLength(0);
    expect(b.networkAcls[0].inbound).toHaveLength(1);
  });

  it('names the event index and field of every mistake', () => {
    expectFirstError(
      haObject([{ at: 1, stopInstance: 'nta' }]),
      'timeline[0].stopInstance',
      "instance 'nta' does not exist",
      "did you mean 'nat'",
    );
    expectFirstError(haObject([{ stopInstance: 'nat' }]), 'timeline[0].at', 'missing');
    expectFirstError(haObject([{ at: -1, stopInstance: 'nat' }]), 'timeline[0].at', 'out of range');
    expectFirstError(haObject([{ at: 'noon', stopInstance: 'nat' }]), 'timeline[0].at', 'ISO 8601');
    expectFirstError(haObject([{ at: 1 }]), 'timeline[0]', 'no action');
    expectFirstError(
      haObject([{ at: 1, stopInstance: 'nat', startInstance: 'nat' }]),
      'timeline[0]',
      'one action per event',
    );
    expectFirstError(
      haObject([{ at: 1, stopInstance: 'nat', colour: 1 }]),
      'timeline[0].colour',
      "unknown key 'colour'",
    );
    expectFirstError(
      haObject([
        { at: 2, stopInstance: 'nat' },
        { at: 1, startInstance: 'nat' },
      ]),
      'timeline[1].at',
      'time order',
    );
    expectFirstError(haObject([{ at: 1, startInstance: 'nat' }]), 'timeline[0].startInstance', 'is running');
    expectFirstError(
      haObject([
        { at: 1, stopInstance: 'nat' },
        { at: 2, stopInstance: 'nat' },
      ]),
      'timeline[1].stopInstance',
      'already stopped',
    );
    expectFirstError(
      haObject([{ at: 1, replaceRoute: { routeTable: 'private', destination: '10.9.0.0/16', target: 'igw' } }]),
      'timeline[0].replaceRoute.destination',
      'has no route to 10.9.0.0/16',
    );
    expectFirstError(
      haObject([{ at: 1, replaceRoute: { routeTable: 'privat', destination: '0.0.0.0/0', target: 'igw' } }]),
      'timeline[0].replaceRoute.routeTable',
      "did you mean 'private'",
    );
    expectFirstError(
      haObject([{ at: 1, replaceRoute: { routeTable: 'private', destination: '0.0.0.0/0', target: 'eni:x' } }]),
      'timeline[0].replaceRoute.target',
      "instance 'x' does not exist",
    );
    expectFirstError(
      haObject([{ at: 1, moveElasticIp: { from: 'app', to: 'spare' } }]),
      'timeline[0].moveElasticIp.from',
      'has no Elastic IP',
    );
    expectFirstError(
      haObject([{ at: 1, moveElasticIp: { from: 'nat', to: 'natb' } }]),
      'timeline[0].moveElasticIp.to',
      'already has an Elastic IP',
    );
    expectFirstError(
      haObject([{ at: 1, moveEni: { from: 'nat', to: 'app' } }]),
      'timeline[0].moveEni.to',
      'another nat table',
    );
    expectFirstError(
      haObject([
        { at: 1, stopInstance: 'natb' },
        { at: 2, moveEni: { from: 'nat', to: 'natb' } },
      ]),
      'timeline[1].moveEni.to',
      'is stopped',
    );
    expectFirstError(
      haObject([{ at: 1, setSecurityGroupRules: { group: 'g' } }]),
      'timeline[0].setSecurityGroupRules.group',
      "'g' does not exist",
    );
    const o = haObject([{ at: 1, setSecurityGroupRules: { group: 'g', inbound: [{ protocol: 'tcp', ports: 80 }] } }]);
    o.securityGroups = { g: {} };
    expectFirstError(o, 'timeline[0].setSecurityGroupRules', 'securityGroups.g.inbound[0]');
  });
});

describe('scenario timeline round trip (scenarioToYaml)', () => {
  it('writes every event back so that it loads to the same events', async () => {
    const { scenarioToYaml } = await import('../../src/scenario/to-yaml.ts');
    const { parseScenario } = await import('../../src/scenario/load.ts');
    const o = haObject([
      { at: 1.5, stopInstance: 'nat' },
      { at: 2, replaceRoute: { routeTable: 'private', destination: '0.0.0.0/0', target: 'eni:natb' } },
      { at: 3, startInstance: 'nat' },
      { at: 4, moveEni: { from: 'nat', to: 'natb' } },
      { at: 5, moveElasticIp: { from: 'natb', to: 'spare' } },
      { at: 6, setSecurityGroupRules: { group: 'natsg', outbound: [] } },
    ]);
    o.securityGroups = { natsg: { inbound: [{ protocol: 'all', cidr: '10.0.0.0/16' }] } };
    o.instances.nat.securityGroups = ['natsg'];
    for (const obj of [o, haObject([{ at: '2026-12-04T21:00:00.000250Z', stopInstance: 'nat' }])]) {
      const s = parseObject(obj);
      expect({ ...parseScenario(scenarioToYaml(s), 'r.yaml'), source: s.source }).toEqual(s);
    }
  });
});
