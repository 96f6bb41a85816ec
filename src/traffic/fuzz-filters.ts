// Random security groups and network ACLs for the differential fuzzer (docs/fuzzing.md): two
// groups with random rules (protocols, the ports the traffic generator uses, CIDRs around the
// fuzz VPC and its peers, a reference to the other group), assigned to random instances with
// random tracking settings (tiny allowances included), and random ACLs on the subnets. Added to
// the scenario file object, so a counterexample's scenario.yaml shows them as a user writes them.

import fc from 'fast-check';

export interface FuzzSgRule {
  protocol: 'tcp' | 'udp' | 'icmp' | 'all';
  ports: string | null;
  icmpType: number | null;
  cidr: string | null;
  group: string | null;
}

export interface FuzzAclRule {
  rule: number;
  action: 'allow' | 'deny';
  protocol: 'tcp' | 'udp' | 'icmp' | 'all';
  ports: string | null;
  cidr: string;
}

export interface FuzzFilterSpec {
  groups: Array<{ inbound: FuzzSgRule[]; outbound: FuzzSgRule[] | null }>;
  /** Per instance name: indexes of its groups (absent: no security groups). */
  assign: Array<{ groups: number[]; allowance: number; udp: number; udpStream: number; tcpEstablished: number }>;
  /** Per subnet (public, private, private2): an ACL or null. */
  acls: Array<{ inbound: FuzzAclRule[]; outbound: FuzzAclRule[] } | null>;
}

const CIDRS = [
  '0.0.0.0/0',
  '0.0.0.0/0',
  '10.0.0.0/16',
  '10.0.1.0/24',
  '10.0.0.0/24',
  '198.51.100.0/24',
  '192.0.2.1/32',
];
const PORTS = [null, null, '53', '80', '443', '8080', '1024-65535', '0-1023', '40000-40999'];

const sgRuleArb: fc.Arbitrary<FuzzSgRule> = fc
  .record({
    protocol: fc.constantFrom('tcp' as const, 'udp' as const, 'icmp' as const, 'all' as const),
    ports: fc.constantFrom(...PORTS),
    icmpType: fc.constantFrom(null, null, 8, 0, 3, 11),
    cidr: fc.constantFrom(...CIDRS),
    group: fc.constantFrom(null, null, null, null, 'g0', 'g1'),
  })
  .map((r) => ({
    protocol: r.protocol,
    ports: r.protocol === 'tcp' || r.protocol === 'udp' ? r.ports : null,
    icmpType: r.protocol === 'icmp' ? r.icmpType : null,
    cidr: r.group ? null : r.cidr,
    group: r.group,
  }));

const aclRuleArb: fc.Arbitrary<Omit<FuzzAclRule, 'rule'>> = fc
  .record({
    action: fc.constantFrom('allow' as const, 'allow' as const, 'allow' as const, 'deny' as const),
    protocol: fc.constantFrom('tcp' as const, 'udp' as const, 'icmp' as const, 'all' as const, 'all' as const),
    ports: fc.constantFrom(...PORTS),
    cidr: fc.constantFrom(...CIDRS),
  })
  .map((r) => ({ ...r, ports: r.protocol === 'tcp' || r.protocol === 'udp' ? r.ports : null }));

const aclRulesArb: fc.Arbitrary<FuzzAclRule[]> = fc
  .uniqueArray(fc.integer({ min: 1, max: 50 }), { minLength: 0, maxLength: 4 })
  .chain((nums) =>
    fc.tuple(...nums.map(() => aclRuleArb)).map((rs) => rs.map((r, k) => ({ ...r, rule: nums[k] * 10 }))),
  );

export const fuzzFilterSpecArb: fc.Arbitrary<FuzzFilterSpec> = fc.record({
  groups: fc.array(
    fc.record({
      inbound: fc.array(sgRuleArb, { maxLength: 3 }),
      outbound: fc.option(fc.array(sgRuleArb, { maxLength: 3 }), { nil: null }),
    }),
    { minLength: 2, maxLength: 2 },
  ),
  assign: fc.array(
    fc.record({
      groups: fc.constantFrom([], [], [0], [1], [0, 1]),
      allowance: fc.constantFrom(262144, 262144, 1, 2, 3, 8),
      udp: fc.constantFrom(30, 60),
      udpStream: fc.constantFrom(60, 180),
      tcpEstablished: fc.constantFrom(60, 432000),
    }),
    { minLength: 6, maxLength: 6 },
  ),
  acls: fc.array(fc.option(fc.record({ inbound: aclRulesArb, outbound: aclRulesArb }), { nil: null, freq: 2 }), {
    minLength: 3,
    maxLength: 3,
  }),
});

function sgRuleObject(r: FuzzSgRule): Record<string, unknown> {
  const o: Record<string, unknown> = { protocol: r.protocol };
  if (r.ports) o.ports = r.ports;
  if (r.icmpType !== null) o.icmpType = r.icmpType;
  if (r.group) o.group = r.group;
  else o.cidr = r.cidr;
  return o;
}

function aclRuleObject(r: FuzzAclRule): Record<string, unknown> {
  const o: Record<string, unknown> = { rule: r.rule, action: r.action, protocol: r.protocol };
  if (r.ports) o.ports = r.ports;
  o.cidr = r.cidr;
  return o;
}

/** Adds the spec's groups and ACLs to a fuzz scenario file object (instances and subnets as generated). */
export function addFuzzFilters(obj: Record<string, unknown>, f: FuzzFilterSpec): void {
  const instances = obj.instances as Record<string, Record<string, unknown>>;
  const subnets = Object.keys(obj.subnets as Record<string, unknown>);
  const groups: Record<string, unknown> = {};
  f.groups.forEach((g, k) => {
    const o: Record<string, unknown> = { inbound: g.inbound.map(sgRuleObject) };
    if (g.outbound) o.outbound = g.outbound.map(sgRuleObject);
    groups[`g${k}`] = o;
  });
  obj.securityGroups = groups;
  Object.keys(instances).forEach((name, k) => {
    const a = f.assign[k % f.assign.length];
    if (a.groups.length === 0) return;
    instances[name].securityGroups = a.groups.map((g) => `g${g}`);
    instances[name].connectionTracking = {
      tcpEstablished: a.tcpEstablished,
      udp: a.udp,
      udpStream: a.udpStream,
      allowance: a.allowance,
    };
  });
  const acls: Record<string, unknown> = {};
  subnets.forEach((sn, k) => {
    const a = f.acls[k];
    if (!a) return;
    acls[`acl-${sn}`] = {
      subnets: [sn],
      inbound: a.inbound.map(aclRuleObject),
      outbound: a.outbound.map(aclRuleObject),
    };
  });
  obj.networkAcls = acls;
}

/** "sg nat0 g0+g1 (allowance 2), acl private 3/1" for progress lines. */
export function describeFuzzFilters(obj: Record<string, unknown>): string {
  const inst = obj.instances as Record<string, Record<string, unknown>>;
  const sg = Object.entries(inst)
    .filter(([, o]) => o.securityGroups)
    .map(([n, o]) => `${n} ${(o.securityGroups as string[]).join('+')}`);
  const acl = Object.keys((obj.networkAcls as Record<string, unknown>) ?? {});
  return `sg [${sg.join(', ')}], acl [${acl.join(', ')}]`;
}
