// Random security groups and network ACLs for the differential fuzzer (docs/fuzzing.md): two
// groups with random rules (protocols, the ports the traffic generator uses, CIDRs around the
// fuzz VPC and its peers, a reference to the other group), assigned to random instances with
// random tracking settings (tiny allowances included), and random ACLs on the subnets. Added to
// the scenario file object, so a counterexample's scenario.yaml shows them as a user writes them.

import fc from 'fast-check';
import type { Scenario } from '../spec/scenario.ts';
import { compileScenarioObject } from '../scenario/load.ts';
import { scenarioToObject } from '../scenario/to-yaml.ts';

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

/** Rules a mid-run change may add to a security group (fuzz `filters[...]` commands). */
const ADD_SG_RULES: FuzzSgRule[] = [
  { protocol: 'all', ports: null, icmpType: null, cidr: '0.0.0.0/0', group: null },
  { protocol: 'tcp', ports: null, icmpType: null, cidr: '0.0.0.0/0', group: null },
  { protocol: 'udp', ports: '53', icmpType: null, cidr: '0.0.0.0/0', group: null },
  { protocol: 'tcp', ports: '443', icmpType: null, cidr: '10.0.0.0/16', group: null },
  { protocol: 'icmp', ports: null, icmpType: null, cidr: '198.51.100.0/24', group: null },
  { protocol: 'udp', ports: '1024-65535', icmpType: null, cidr: '0.0.0.0/0', group: null },
];
/** A list holds at most this many rules after an addition (the core's rule arrays have room). */
const CHANGE_MAX_RULES = 8;

function ruleWords(r: Record<string, unknown>): string {
  const ports = r.ports !== undefined ? ` ${r.ports}` : '';
  const icmp = r.icmpType !== undefined ? ` type ${r.icmpType}` : '';
  const num = r.rule !== undefined ? `${r.rule} ${r.action} ` : '';
  return `${num}${r.protocol}${ports}${icmp} ${r.cidr ?? `group ${r.group}`}`;
}

/**
 * One mid-run change of a security group's rules or an ACL's entries: remove a rule, add one, or
 * (ACL) flip an entry's action. `target` picks the list, `op` the change, `pick` the rule. Null
 * when the scenario has no groups or ACLs. `changed`: the group or ACL (a timeline event's
 * setSecurityGroupRules / setNetworkAclEntries names it).
 */
export function mutateFilters(
  s: Scenario,
  target: number,
  op: number,
  pick: number,
): { scenario: Scenario; text: string; changed: { what: 'group' | 'acl'; name: string } } | null {
  const obj = scenarioToObject(s) as Record<string, unknown>;
  type Lists = Record<string, { inbound: Array<Record<string, unknown>>; outbound: Array<Record<string, unknown>> }>;
  const lists: Array<{ of: string; name: string; list: Array<Record<string, unknown>>; acl: boolean }> = [];
  for (const [n, g] of Object.entries((obj.securityGroups as Lists | undefined) ?? {}))
    for (const d of ['inbound', 'outbound'] as const) lists.push({ of: n, name: `${n} ${d}`, list: g[d], acl: false });
  for (const [n, a] of Object.entries((obj.networkAcls as Lists | undefined) ?? {}))
    for (const d of ['inbound', 'outbound'] as const) lists.push({ of: n, name: `${n} ${d}`, list: a[d], acl: true });
  if (lists.length === 0) return null;
  const L = lists[target % lists.length];
  let text: string;
  const kind = L.list.length === 0 ? 1 : L.list.length >= CHANGE_MAX_RULES ? 0 : op % 3;
  if (kind === 0) {
    const [gone] = L.list.splice(pick % L.list.length, 1);
    text = `${L.name} -${ruleWords(gone)}`;
  } else if (kind === 1 || !L.acl) {
    const r = ADD_SG_RULES[pick % ADD_SG_RULES.length];
    const o: Record<string, unknown> = { protocol: r.protocol };
    if (r.ports) o.ports = r.ports;
    o.cidr = r.cidr;
    if (L.acl) {
      const used = new Set(L.list.map((x) => x.rule as number));
      let num = 5 + 10 * (pick % 60);
      while (used.has(num)) num++;
      L.list.push({ rule: num, action: op % 2 === 0 ? 'deny' : 'allow', ...o });
      text = `${L.name} +${ruleWords(L.list[L.list.length - 1])}`;
    } else {
      L.list.push(o);
      text = `${L.name} +${ruleWords(o)}`;
    }
  } else {
    const e = L.list[pick % L.list.length];
    e.action = e.action === 'allow' ? 'deny' : 'allow';
    text = `${L.name} ${e.rule} now ${e.action}`;
  }
  return {
    scenario: compileScenarioObject(obj, s.source),
    text,
    changed: { what: L.acl ? 'acl' : 'group', name: L.of },
  };
}
