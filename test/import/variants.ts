// Broken variants of vpc-nat-instance-open (the built-in without its NATSG group, so every probe
// meets the fault, not the group) for `natlab check`: each is one real-world fault.
import { compileScenarioObject } from '../../src/scenario/load.ts';
import { loadOpenScenario } from '../../src/scenario/builtin.ts';
import { scenarioToObject } from '../../src/scenario/to-yaml.ts';
import type { Scenario } from '../../src/spec/scenario.ts';

type Obj = Record<string, any>;

export function openObject(): Obj {
  return scenarioToObject(loadOpenScenario()) as Obj;
}

const natTable = (...rules: string[]): string =>
  [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ...rules,
    'COMMIT',
    '',
  ].join('\n');

export interface Variant {
  name: string;
  /** What is wrong, in the words of the fault. */
  fault: string;
  edit: (o: Obj) => void;
}

export const VARIANTS: Variant[] = [
  {
    name: 'sdc-on',
    fault: 'source/dest check left on at the NAT instance',
    edit: (o) => (o.instances.nat.sourceDestCheck = true),
  },
  {
    name: 'blackhole',
    fault: 'route to a terminated NAT instance (State blackhole)',
    edit: (o) => (o.routeTables.private[1].target = 'blackhole'),
  },
  {
    name: 'no-route',
    fault: 'private route table without a default route',
    edit: (o) => o.routeTables.private.splice(1, 1),
  },
  {
    name: 'ip-forward-off',
    fault: 'net.ipv4.ip_forward = 0 on the NAT instance',
    edit: (o) => (o.instances.nat.sysctls['net.ipv4.ip_forward'] = 0),
  },
  {
    name: 'new-cidr',
    fault: 'a VPC CIDR added after the NAT was set up: MASQUERADE -s does not cover it',
    edit: (o) => {
      o.vpc.cidr = '10.0.0.0/15';
      o.routeTables.public[0].dest = '10.0.0.0/15';
      o.routeTables.private[0].dest = '10.0.0.0/15';
      o.subnets.added = { cidr: '10.1.0.0/24', routeTable: 'private' };
    },
  },
  {
    name: 'wrong-iface',
    fault: 'MASQUERADE -o ens5 on an instance whose interface is eth0',
    edit: (o) => (o.instances.nat.iptables = natTable('-A POSTROUTING -s 10.0.0.0/16 -o ens5 -j MASQUERADE')),
  },
  {
    name: 'no-nat-rule',
    fault: 'fck-nat\'s boot race: iptables -o "" rejected, no MASQUERADE rule',
    edit: (o) => (o.instances.nat.iptables = natTable()),
  },
  { name: 'nat-no-eip', fault: 'the NAT instance has no Elastic IP', edit: (o) => delete o.instances.nat.elasticIp },
  {
    name: 'self-route',
    fault: "the NAT instance's own subnet routes 0.0.0.0/0 to it",
    edit: (o) => (o.routeTables.public[1].target = 'eni:nat'),
  },
  {
    name: 'dnat-asymmetric',
    fault: 'DNAT to a host whose replies leave by its own Elastic IP',
    edit: (o) =>
      (o.instances.nat.iptables = natTable(
        '-A PREROUTING -i eth0 -p tcp -m tcp --dport 2222 -j DNAT --to-destination 10.0.0.20:22',
        '-A POSTROUTING -s 10.0.0.0/16 -o eth0 -j MASQUERADE',
      )),
  },
  {
    name: 'accept-first',
    fault: 'an ACCEPT before the MASQUERADE rule shadows it',
    edit: (o) =>
      (o.instances.nat.iptables = natTable(
        '-A POSTROUTING -j ACCEPT',
        '-A POSTROUTING -s 10.0.0.0/16 -o eth0 -j MASQUERADE',
      )),
  },
  {
    name: 'tcp-only',
    fault: 'MASQUERADE only for -p tcp: DNS and ping fail',
    edit: (o) => (o.instances.nat.iptables = natTable('-A POSTROUTING -s 10.0.0.0/16 -o eth0 -p tcp -j MASQUERADE')),
  },
  {
    name: 'route-to-plain-host',
    fault: 'private default route to an instance that is not a NAT (web)',
    edit: (o) => (o.routeTables.private[1].target = 'eni:web'),
  },
  {
    name: 'eip-in-private',
    fault: 'an Elastic IP on an instance in the private subnet: replies leave through the NAT',
    edit: (o) => ((o.instances.web.subnet = 'private'), (o.instances.web.privateIp = '10.0.1.20')),
  },
];

export function variantScenario(v: Variant): Scenario {
  const o = openObject();
  v.edit(o);
  o.name = `broken-${v.name}`;
  return compileScenarioObject(o, `${v.name}.yaml`);
}
