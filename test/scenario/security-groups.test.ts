// Scenario keys of the AWS filtering layers: securityGroups, networkAcls, per-instance
// securityGroups / connectionTracking (docs/scenarios.md "Security groups and network ACLs").
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.ts';
import { scenarioToObject, scenarioToYaml } from '../../src/scenario/to-yaml.ts';
import { compileScenarioObject } from '../../src/scenario/load.ts';
import { resolveScenarioPath, loadScenario } from '../../src/scenario/index.ts';
import { FILTER_PROTO_ALL, ICMP_ANY, SG_ALLOWANCE_DEFAULT } from '../../src/spec/aws-filters.ts';
import { baseObject, loadError, parseObject } from './helpers.ts';

function withFilters(): Record<string, any> {
  const o = baseObject();
  o.securityGroups = {
    natsg: {
      inbound: [
        { protocol: 'tcp', ports: '80', cidr: '10.0.1.0/24' },
        { protocol: 'tcp', ports: '1024-65535', group: 'appsg' },
        { protocol: 'icmp', icmpType: 8, cidr: '0.0.0.0/0' },
      ],
      outbound: [{ protocol: 'all', cidr: '0.0.0.0/0' }],
    },
    appsg: {},
  };
  o.instances.nat.securityGroups = ['natsg'];
  o.instances.nat.connectionTracking = { udp: 45, allowance: 10 };
  o.instances.app.securityGroups = ['appsg'];
  o.networkAcls = {
    priv: {
      subnets: ['private'],
      inbound: [
        { rule: 200, action: 'allow', protocol: 'tcp', ports: '1024-65535', cidr: '0.0.0.0/0' },
        { rule: 100, action: 'deny', protocol: 'udp', ports: 53, cidr: '198.51.100.7' },
      ],
      outbound: [{ rule: 100, action: 'allow', protocol: -1, cidr: '0.0.0.0/0' }],
    },
  };
  return o;
}

describe('security groups and network ACLs in scenario files', () => {
  it('compile to indexes, sorted ACL rules and AWS defaults', () => {
    const s = parseObject(withFilters());
    expect(s.securityGroups?.map((g) => g.name)).toEqual(['natsg', 'appsg']);
    const nat = s.securityGroups![0];
    expect(nat.inbound[0]).toEqual({
      proto: 6,
      portLo: 80,
      portHi: 80,
      icmpType: ICMP_ANY,
      icmpCode: ICMP_ANY,
      cidr: { addr: 0x0a000100, len: 24 },
      group: -1,
    });
    expect(nat.inbound[1].group).toBe(1);
    expect(nat.inbound[2]).toMatchObject({ proto: 1, icmpType: 8, icmpCode: ICMP_ANY });
    // A group without outbound rules gets AWS's default: everything to 0.0.0.0/0.
    expect(s.securityGroups![1].outbound).toEqual([
      {
        proto: FILTER_PROTO_ALL,
        portLo: 0,
        portHi: 65535,
        icmpType: -1,
        icmpCode: -1,
        cidr: { addr: 0, len: 0 },
        group: -1,
      },
    ]);
    expect(s.securityGroups![1].inbound).toEqual([]);
    expect(s.instances[0].security).toEqual({
      groups: [0],
      tracking: { tcpEstablished: 432000, udp: 45, udpStream: 180, allowance: 10 },
    });
    expect(s.instances[1].security?.tracking.allowance).toBe(SG_ALLOWANCE_DEFAULT);
    const acl = s.networkAcls![0];
    expect(acl.subnets).toEqual([1]);
    expect(acl.inbound.map((r) => r.num)).toEqual([100, 200]);
    expect(acl.inbound[0]).toMatchObject({
      action: 'deny',
      proto: 17,
      portLo: 53,
      portHi: 53,
      cidr: { addr: 0xc6336407, len: 32 },
    });
    expect(acl.outbound[0].proto).toBe(FILTER_PROTO_ALL);
  });

  it('a scenario without the keys compiles exactly as before (no new fields)', () => {
    const s = parseObject(baseObject());
    expect('securityGroups' in s).toBe(false);
    expect('networkAcls' in s).toBe(false);
    expect(s.instances.every((i) => !('security' in i))).toBe(true);
  });

  it('round trip: toYaml → parse and the JSON form give the same scenario', () => {
    const s = parseObject(withFilters());
    const back = parseScenario(scenarioToYaml(s), 'back.yaml');
    expect({ ...back, source: s.source }).toEqual(s);
    const json = compileScenarioObject(JSON.parse(JSON.stringify(scenarioToObject(s))), 'back.json');
    expect({ ...json, source: s.source }).toEqual(s);
  });

  it('the bundled vpc-nat-instance-sg scenario loads and round-trips', () => {
    const s = loadScenario(resolveScenarioPath('vpc-nat-instance-sg'));
    expect(s.instances.map((i) => i.security?.groups.map((g) => s.securityGroups![g].name))).toEqual([
      ['natsg'],
      ['web'],
      ['app'],
    ]);
    const back = parseScenario(scenarioToYaml(s), 'back.yaml');
    expect({ ...back, source: s.source }).toEqual(s);
  });

  const bad: Array<[string, (o: Record<string, any>) => void, RegExp]> = [
    [
      'unknown group',
      (o) => (o.instances.app.securityGroups = ['nosuch']),
      /instances\.app\.securityGroups\[0\]: security group 'nosuch' does not exist/,
    ],
    ['group listed twice', (o) => (o.instances.app.securityGroups = ['appsg', 'appsg']), /listed twice/],
    ['no groups', (o) => (o.instances.app.securityGroups = []), /1\.\.16 security groups/],
    [
      'tracking without groups',
      (o) => {
        delete o.instances.nat.securityGroups;
      },
      /instances\.nat\.connectionTracking: needs securityGroups/,
    ],
    [
      'udp timeout out of AWS range',
      (o) => (o.instances.nat.connectionTracking.udp = 61),
      /connectionTracking\.udp: 61 is out of range 30\.\.60/,
    ],
    [
      'bad protocol',
      (o) => (o.securityGroups.natsg.inbound[0].protocol = 'tcpp'),
      /securityGroups\.natsg\.inbound\[0\]\.protocol: unknown protocol/,
    ],
    [
      'ports on icmp',
      (o) => (o.securityGroups.natsg.inbound[2].ports = 80),
      /inbound\[2\]\.ports: ports only apply to protocol tcp or udp/,
    ],
    [
      'bad port range',
      (o) => (o.securityGroups.natsg.inbound[0].ports = '90-80'),
      /inbound\[0\]\.ports: port range 90-80/,
    ],
    [
      'cidr and group',
      (o) => (o.securityGroups.natsg.inbound[0].group = 'appsg'),
      /inbound\[0\]: give exactly one of cidr/,
    ],
    [
      'unknown referenced group',
      (o) => (o.securityGroups.natsg.inbound[1].group = 'apps'),
      /inbound\[1\]\.group: security group 'apps' does not exist \(did you mean 'appsg'\?\)/,
    ],
    [
      'unknown rule key',
      (o) => (o.securityGroups.natsg.outbound[0].port = 1),
      /outbound\[0\]\.port: unknown key 'port' \(did you mean 'ports'\?\)/,
    ],
    [
      'icmpCode without type',
      (o) => (o.securityGroups.natsg.inbound[2] = { protocol: 'icmp', icmpCode: 4, cidr: '0.0.0.0/0' }),
      /icmpCode: icmpCode needs an icmpType/,
    ],
    [
      'host bits',
      (o) => (o.securityGroups.natsg.inbound[0].cidr = '10.0.1.5/24'),
      /inbound\[0\]\.cidr: 10\.0\.1\.5\/24 has host bits set/,
    ],
    [
      'acl rule number twice',
      (o) => (o.networkAcls.priv.inbound[1].rule = 200),
      /networkAcls\.priv\.inbound\[1\]\.rule: rule number 200 is used twice/,
    ],
    [
      'acl rule number range',
      (o) => (o.networkAcls.priv.inbound[1].rule = 32767),
      /rule: 32767 is out of range 1\.\.32766/,
    ],
    [
      'acl action',
      (o) => (o.networkAcls.priv.inbound[1].action = 'reject'),
      /action: expected allow or deny, got 'reject'/,
    ],
    [
      'acl without cidr',
      (o) => delete o.networkAcls.priv.outbound[0].cidr,
      /outbound\[0\]\.cidr: missing \(required\)/,
    ],
    [
      'acl unknown subnet',
      (o) => (o.networkAcls.priv.subnets = ['privat']),
      /subnets\[0\]: subnet 'privat' does not exist \(did you mean 'private'\?\)/,
    ],
    [
      'subnet in two acls',
      (o) => (o.networkAcls.other = { subnets: ['private'] }),
      /networkAcls\.other\.subnets\[0\]: subnet 'private' is already associated with network ACL priv/,
    ],
    [
      'unknown top key',
      (o) => (o.securityGroup = {}),
      /unknown key 'securityGroup' \(did you mean 'securityGroups'\?\)/,
    ],
  ];
  for (const [what, mutate, re] of bad)
    it(`error: ${what}`, () => {
      const o = withFilters();
      mutate(o);
      expect(loadError(o).message).toMatch(re);
    });
});
