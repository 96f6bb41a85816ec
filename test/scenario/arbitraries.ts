// fast-check arbitraries for scenario tests: valid nat rules (as fields) and valid scenario files
// (as plain objects in the file format). Small on purpose; the fuzz suite builds richer ones.
import fc from 'fast-check';
import {
  NF_NAT_RANGE_MAP_IPS,
  NF_NAT_RANGE_PERSISTENT,
  NF_NAT_RANGE_PROTO_RANDOM,
  NF_NAT_RANGE_PROTO_RANDOM_FULLY,
  NF_NAT_RANGE_PROTO_SPECIFIED,
  NAT_CHAINS,
  type CidrMatch,
  type NatChainName,
  type NatRule,
  type NatTarget,
  type NatTargetKind,
  type PortMatch,
} from '../../src/spec/scenario.ts';
import { formatNatRule } from '../../src/scenario/iptables.ts';

const maskOf = (len: number): number => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);

export const cidrMatchArb: fc.Arbitrary<CidrMatch> = fc
  .record({ addr: fc.integer({ min: 0, max: 0xffffffff }), len: fc.integer({ min: 1, max: 32 }), neg: fc.boolean() })
  .map(({ addr, len, neg }) => ({ cidr: { addr: (addr & maskOf(len)) >>> 0, len }, neg }));

const portMatchArb: fc.Arbitrary<PortMatch> = fc
  .tuple(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), fc.boolean(), fc.boolean())
  .map(([a, b, single, neg]) => (single ? { lo: a, hi: a, neg } : { lo: Math.min(a, b), hi: Math.max(a, b), neg }))
  .filter((p) => p.neg || p.lo !== 0 || p.hi !== 65535);

const ifaceArb = fc.record({ name: fc.constantFrom('eth0', 'eth1', 'ens5', 'eth+', 'veth+'), neg: fc.boolean() });

const natPortsArb = fc
  .tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }))
  .map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const);

function targetArb(chain: NatChainName, portsOk: boolean): fc.Arbitrary<NatTarget> {
  const kinds: NatTargetKind[] =
    chain === 'POSTROUTING'
      ? ['MASQUERADE', 'SNAT', 'ACCEPT', 'RETURN']
      : chain === 'INPUT'
        ? ['SNAT', 'ACCEPT', 'RETURN']
        : ['DNAT', 'ACCEPT', 'RETURN'];
  return fc
    .record({
      kind: fc.constantFrom(...kinds),
      a: fc.integer({ min: 0x01000000, max: 0xdfffffff }),
      span: fc.integer({ min: 0, max: 3 }),
      ports: fc.option(natPortsArb, { nil: null }),
      random: fc.boolean(),
      fully: fc.boolean(),
      persistent: fc.boolean(),
    })
    .map(({ kind, a, span, ports, random, fully, persistent }) => {
      const t: NatTarget = { kind, addrLo: 0, addrHi: 0, portLo: 0, portHi: 0, flags: 0 };
      if (kind === 'ACCEPT' || kind === 'RETURN') return t;
      if (kind !== 'MASQUERADE') {
        t.addrLo = a >>> 0;
        t.addrHi = (a + span) >>> 0;
        t.flags |= NF_NAT_RANGE_MAP_IPS;
        if (persistent) t.flags |= NF_NAT_RANGE_PERSISTENT;
      }
      if (ports && portsOk) {
        [t.portLo, t.portHi] = ports;
        t.flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
      }
      if (random) t.flags |= NF_NAT_RANGE_PROTO_RANDOM;
      if (fully && kind !== 'DNAT') t.flags |= NF_NAT_RANGE_PROTO_RANDOM_FULLY;
      return t;
    });
}

export interface ArbRule {
  chain: NatChainName;
  rule: NatRule;
}

export const natRuleArb: fc.Arbitrary<ArbRule> = fc.constantFrom(...NAT_CHAINS).chain((chain) =>
  fc
    .record({
      src: fc.option(cidrMatchArb, { nil: null }),
      dst: fc.option(cidrMatchArb, { nil: null }),
      iface: fc.option(ifaceArb, { nil: null }),
      proto: fc.option(fc.record({ proto: fc.constantFrom(1, 6, 17, 33, 47, 132), neg: fc.boolean() }), { nil: null }),
      sport: fc.option(portMatchArb, { nil: null }),
      dport: fc.option(portMatchArb, { nil: null }),
      comment: fc.option(fc.stringMatching(/^[A-Za-z0-9 _.:'"\\-]{1,20}$/), { nil: null }),
    })
    .chain((m) => {
      const l4 = m.proto !== null && !m.proto.neg && (m.proto.proto === 6 || m.proto.proto === 17);
      const natPorts = m.proto !== null && !m.proto.neg && [1, 6, 17, 33, 132].includes(m.proto.proto);
      return targetArb(chain, natPorts).map((target) => {
        const inChain = chain === 'PREROUTING' || chain === 'INPUT';
        const fields = {
          src: m.src,
          dst: m.dst,
          inIface: inChain ? m.iface : null,
          outIface: inChain ? null : m.iface,
          proto: m.proto,
          sport: l4 ? m.sport : null,
          dport: l4 ? m.dport : null,
          target,
        };
        return { chain, rule: { ...fields, text: formatNatRule(chain, fields, { comment: m.comment }) } };
      });
    }),
);

/** iptables-save text of the given rules, chains in table order. */
export function tableText(rules: ArbRule[]): string {
  const lines = ['*nat', ...NAT_CHAINS.map((c) => `:${c} ACCEPT [0:0]`)];
  for (const c of NAT_CHAINS) for (const r of rules) if (r.chain === c) lines.push(r.rule.text);
  return [...lines, 'COMMIT', ''].join('\n');
}

const ipText = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/** A valid scenario file object: VPC 10.V.0.0/16, /24 subnets, instances, routes, nat, conntrack. */
export const scenarioObjectArb: fc.Arbitrary<Record<string, unknown>> = fc
  .record({
    v: fc.integer({ min: 0, max: 255 }),
    name: fc.constantFrom('s', 'true', 'null', 'x-1', 'My Scenario: 2', 'two\nlines: x', "it's # not a comment"),
    subnetOctets: fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 }),
    rtCount: fc.integer({ min: 1, max: 3 }),
    instances: fc.array(
      fc.record({
        subnet: fc.nat(),
        offset: fc.integer({ min: 4, max: 254 }),
        eip: fc.option(fc.integer({ min: 1, max: 254 }), { nil: null }),
        sdc: fc.option(fc.boolean(), { nil: undefined }),
        nat: fc.oneof(
          fc.constant<null>(null),
          fc.record({ fromMeta: fc.boolean() }),
          fc.array(natRuleArb, { maxLength: 4 }),
        ),
        sysctls: fc.option(fc.tuple(fc.boolean(), fc.boolean(), fc.boolean()), { nil: null }),
      }),
      { minLength: 1, maxLength: 6 },
    ),
    routes: fc.array(
      fc.record({
        table: fc.nat(),
        len: fc.integer({ min: 0, max: 32 }),
        addr: fc.integer({ min: 0, max: 0xffffffff }),
        target: fc.constantFrom('igw', 'blackhole', 'eni'),
        inst: fc.nat(),
      }),
      { maxLength: 6 },
    ),
    hosts: fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 4 }),
    conntrack: fc.option(
      fc.record({
        max: fc.integer({ min: 1, max: 1 << 20 }),
        tcpLoose: fc.boolean(),
        checksum: fc.boolean(),
        udp: fc.integer({ min: 1, max: 3600 }),
      }),
      { nil: null },
    ),
  })
  .map((g) => {
    const rtNames = Array.from({ length: g.rtCount }, (_, i) => `rt${i}`);
    const subnets = Object.fromEntries(
      g.subnetOctets.map((o, i) => [
        `sn${i}`,
        { cidr: `10.${g.v}.${o}.0/24`, routeTable: rtNames[i % rtNames.length] },
      ]),
    );
    const usedIp = new Set<string>();
    const usedEip = new Set<number>();
    const instances: Record<string, unknown> = {};
    g.instances.forEach((inst, i) => {
      const sn = inst.subnet % g.subnetOctets.length;
      const privateIp = `10.${g.v}.${g.subnetOctets[sn]}.${inst.offset}`;
      if (usedIp.has(privateIp)) return;
      usedIp.add(privateIp);
      const o: Record<string, unknown> = { subnet: `sn${sn}`, privateIp };
      if (inst.eip !== null && !usedEip.has(inst.eip)) {
        usedEip.add(inst.eip);
        o.elasticIp = `203.0.113.${inst.eip}`;
      }
      if (inst.sdc !== undefined) o.sourceDestCheck = inst.sdc;
      if (inst.nat !== null && !Array.isArray(inst.nat))
        o.natInstance = { bootScript: 'configure-pat', vpcCidrFromMetadata: inst.nat.fromMeta };
      else if (Array.isArray(inst.nat)) o.iptables = tableText(inst.nat);
      if (inst.sysctls) {
        o.sysctls = {
          'net.ipv4.ip_forward': inst.sysctls[0] ? 1 : 0,
          'net.ipv4.conf.all.send_redirects': inst.sysctls[1],
          'net.ipv4.conf.eth0.send_redirects': inst.sysctls[2] ? 1 : 0,
        };
      }
      instances[`i${i}`] = o;
    });
    const instNames = Object.keys(instances);
    const routeTables: Record<string, Array<{ dest: string; target: string }>> = Object.fromEntries(
      rtNames.map((n) => [n, []]),
    );
    const vpcAddr = (10 * 2 ** 24 + g.v * 2 ** 16) >>> 0;
    for (const r of g.routes) {
      const addr = (r.addr & maskOf(r.len)) >>> 0;
      if (r.len <= 16 && (vpcAddr & maskOf(r.len)) >>> 0 === addr && r.len === 16) continue; // the VPC CIDR itself
      const dest = `${ipText(addr)}/${r.len}`;
      const table = routeTables[rtNames[r.table % rtNames.length]];
      if (table.some((x) => x.dest === dest)) continue;
      table.push({ dest, target: r.target === 'eni' ? `eni:${instNames[r.inst % instNames.length]}` : r.target });
    }
    const obj: Record<string, unknown> = {
      name: g.name,
      vpc: { cidr: `10.${g.v}.0.0/16` },
      routeTables,
      subnets,
      instances,
      internet: { hosts: g.hosts.map((h, i) => (i % 2 ? `198.51.100.${h}` : `192.0.${2 + (h % 1)}.${h}/32`)) },
    };
    if (g.conntrack)
      obj.conntrack = {
        max: g.conntrack.max,
        tcpLoose: g.conntrack.tcpLoose,
        checksum: g.conntrack.checksum,
        timeouts: { udp: g.conntrack.udp },
      };
    return obj;
  });
