// natlab scenario import: security groups and network ACLs from AWS CLI describe-* output — each
// rule kind (all, tcp/udp ports, ICMP type/code as AWS encodes it in FromPort/ToPort and
// IcmpTypeCode, protocol numbers, group references), ACL entries with deny and rule order, what is
// skipped (IPv6 ranges, prefix lists, ICMPv6, unknown groups) and `natlab check` on the result.
import { describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importScenario } from '../../src/scenario/import/index.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../src/packet/constants.ts';
import { FILTER_PROTO_ALL, ICMP_ANY } from '../../src/spec/aws-filters.ts';
import { runCli } from './cli-run.ts';

const AWS = 'test/fixtures/import/aws-vpc-nat-instance';
const VPC = 'vpc-0a1b2c3d4e5f60001';
const PUBLIC = 'subnet-0a1b2c3d4e5f60011';
const PRIVATE = 'subnet-0a1b2c3d4e5f60012';

const perm = (p: Record<string, unknown>): Record<string, unknown> => ({
  IpRanges: [],
  Ipv6Ranges: [],
  PrefixListIds: [],
  UserIdGroupPairs: [],
  ...p,
});

const GROUPS = {
  SecurityGroups: [
    {
      GroupId: 'sg-0a1b2c3d4e5f60061',
      GroupName: 'nat-sg',
      Description: 'NAT instance',
      VpcId: VPC,
      IpPermissions: [
        perm({
          IpProtocol: 'tcp',
          FromPort: 443,
          ToPort: 443,
          IpRanges: [{ CidrIp: '10.0.1.0/24', Description: 'https' }],
        }),
        perm({ IpProtocol: 'udp', FromPort: 1024, ToPort: 65535, IpRanges: [{ CidrIp: '10.0.0.0/16' }] }),
        perm({ IpProtocol: 'icmp', FromPort: 8, ToPort: -1, UserIdGroupPairs: [{ GroupId: 'sg-0a1b2c3d4e5f60063' }] }),
        perm({ IpProtocol: 'icmp', FromPort: 3, ToPort: 4, IpRanges: [{ CidrIp: '0.0.0.0/0' }] }),
        perm({ IpProtocol: '50', IpRanges: [{ CidrIp: '192.0.2.0/24' }] }),
        perm({
          IpProtocol: 'tcp',
          FromPort: 22,
          ToPort: 22,
          Ipv6Ranges: [{ CidrIpv6: '2001:db8::/32' }],
          PrefixListIds: [{ PrefixListId: 'pl-0123456789abcdef0' }],
          UserIdGroupPairs: [{ GroupId: 'sg-0ffffffffffffffff' }],
        }),
        perm({ IpProtocol: 'icmpv6', FromPort: -1, ToPort: -1, Ipv6Ranges: [{ CidrIpv6: '::/0' }] }),
      ],
      IpPermissionsEgress: [perm({ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] })],
    },
    {
      GroupId: 'sg-0a1b2c3d4e5f60062',
      GroupName: 'web-sg',
      VpcId: VPC,
      IpPermissions: [perm({ IpProtocol: 'tcp', FromPort: 0, ToPort: 65535, IpRanges: [{ CidrIp: '0.0.0.0/0' }] })],
      IpPermissionsEgress: [],
    },
    {
      GroupId: 'sg-0a1b2c3d4e5f60063',
      GroupName: 'app-sg',
      VpcId: VPC,
      IpPermissions: [],
      IpPermissionsEgress: [perm({ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }] })],
    },
  ],
};

const entry = (
  n: number,
  egress: boolean,
  action: string,
  e: Record<string, unknown> = {},
): Record<string, unknown> => ({
  RuleNumber: n,
  Egress: egress,
  RuleAction: action,
  Protocol: '-1',
  CidrBlock: '0.0.0.0/0',
  ...e,
});

const ACLS = {
  NetworkAcls: [
    {
      NetworkAclId: 'acl-0a1b2c3d4e5f600a1',
      VpcId: VPC,
      IsDefault: true,
      Tags: [],
      Associations: [{ NetworkAclId: 'acl-0a1b2c3d4e5f600a1', SubnetId: PUBLIC }],
      Entries: [
        entry(100, false, 'allow'),
        entry(32767, false, 'deny'),
        entry(100, true, 'allow'),
        entry(32767, true, 'deny'),
      ],
    },
    {
      NetworkAclId: 'acl-0a1b2c3d4e5f600a2',
      VpcId: VPC,
      IsDefault: false,
      Tags: [{ Key: 'Name', Value: 'private-acl' }],
      Associations: [{ NetworkAclId: 'acl-0a1b2c3d4e5f600a2', SubnetId: PRIVATE }],
      Entries: [
        // listed out of order: the scenario sorts by rule number
        entry(200, true, 'allow'),
        entry(90, true, 'deny', { Protocol: '17', PortRange: { From: 53, To: 53 } }),
        entry(95, true, 'deny', { Protocol: '1', IcmpTypeCode: { Type: 8, Code: -1 } }),
        entry(100, false, 'allow', { CidrBlock: '10.0.0.0/16' }),
        entry(110, false, 'allow', { Protocol: '6', PortRange: { From: 1024, To: 65535 } }),
        entry(120, false, 'allow', { Protocol: '17', PortRange: { From: 1024, To: 65535 } }),
        entry(130, false, 'allow', { Protocol: '1', IcmpTypeCode: { Type: 0, Code: 0 } }),
        { RuleNumber: 140, Egress: false, RuleAction: 'allow', Protocol: '-1', Ipv6CidrBlock: '::/0' },
        entry(32767, false, 'deny'),
        entry(32767, true, 'deny'),
      ],
    },
  ],
};

function fixture(): string {
  const d = mkdtempSync(join(tmpdir(), 'natlab-import-sg-'));
  cpSync(AWS, d, { recursive: true });
  writeFileSync(join(d, 'describe-security-groups.json'), JSON.stringify(GROUPS));
  writeFileSync(join(d, 'describe-network-acls.json'), JSON.stringify(ACLS));
  return d;
}

describe('scenario import: security groups and network ACLs (AWS CLI JSON)', () => {
  const r = importScenario([fixture()], []);
  const sg = (n: string) => r.scenario.securityGroups!.find((g) => g.name === n)!;
  const skipped = r.skipped.map((s) => `${s.what} — ${s.reason}`).join('\n');

  it('each permission becomes one rule per IPv4 range and per group', () => {
    const nat = sg('nat-sg');
    const app = r.scenario.securityGroups!.findIndex((g) => g.name === 'app-sg');
    expect(nat.inbound.map((x) => [x.proto, x.portLo, x.portHi, x.icmpType, x.icmpCode, x.cidr, x.group])).toEqual([
      [PROTO_TCP, 443, 443, ICMP_ANY, ICMP_ANY, { addr: 0x0a000100, len: 24 }, -1],
      [PROTO_UDP, 1024, 65535, ICMP_ANY, ICMP_ANY, { addr: 0x0a000000, len: 16 }, -1],
      // AWS encodes ICMP type in FromPort and code in ToPort (-1: any)
      [PROTO_ICMP, 0, 65535, 8, ICMP_ANY, null, app],
      [PROTO_ICMP, 0, 65535, 3, 4, { addr: 0, len: 0 }, -1],
      [50, 0, 65535, ICMP_ANY, ICMP_ANY, { addr: 0xc0000200, len: 24 }, -1],
    ]);
    expect(nat.outbound.map((x) => x.proto)).toEqual([FILTER_PROTO_ALL]);
    // tcp 0-65535 is every port; an empty IpPermissionsEgress stays empty (no outbound rule)
    expect(sg('web-sg').inbound.map((x) => [x.proto, x.portLo, x.portHi])).toEqual([[PROTO_TCP, 0, 65535]]);
    expect(sg('web-sg').outbound).toEqual([]);
  });

  it("each instance gets its primary ENI's groups", () => {
    const names = r.scenario.securityGroups!.map((g) => g.name);
    expect(r.scenario.instances.map((i) => [i.name, i.security?.groups.map((g) => names[g])])).toEqual([
      ['nat', ['nat-sg']],
      ['web', ['web-sg']],
      ['app', ['app-sg']],
    ]);
  });

  it('IPv6 ranges, prefix lists, ICMPv6 and groups not in the input are skipped with the reason', () => {
    expect(skipped).toMatch(
      /security group sg-0a1b2c3d4e5f60061 inbound rule tcp 22 2001:db8::\/32 — IPv6 ranges are not modelled/,
    );
    expect(skipped).toMatch(
      /security group sg-0a1b2c3d4e5f60061 inbound rule tcp 22 pl-0123456789abcdef0 — prefix lists are not in the scenario/,
    );
    expect(skipped).toMatch(/inbound rule icmpv6 — ICMPv6 is IPv6/);
    expect(skipped).toMatch(
      /security group nat-sg inbound rule tcp 22 naming group sg-0ffffffffffffffff — group sg-0ffffffffffffffff is not in the input/,
    );
    expect(skipped).toMatch(
      /network ACL acl-0a1b2c3d4e5f600a2 inbound rule 140 \(allow ::\/0\) — IPv6 entries are not modelled/,
    );
    // the implicit rule 32767 is the scenario's own "no rule matches: deny": not skipped
    expect(skipped).not.toMatch(/32767/);
  });

  it('ACL entries: numbers, deny, ports, ICMP type/code, sorted by number; the default ACL as is', () => {
    const [def, priv] = r.scenario.networkAcls!;
    expect([def.name, def.subnets, def.inbound.length, def.outbound.length]).toEqual([
      'acl-0a1b2c3d4e5f600a1',
      [0],
      1,
      1,
    ]);
    expect(priv.name).toBe('private-acl');
    expect(priv.subnets).toEqual([1]);
    expect(priv.outbound.map((x) => [x.num, x.action, x.proto, x.portLo, x.portHi, x.icmpType, x.icmpCode])).toEqual([
      [90, 'deny', PROTO_UDP, 53, 53, ICMP_ANY, ICMP_ANY],
      [95, 'deny', PROTO_ICMP, 0, 65535, 8, ICMP_ANY],
      [200, 'allow', FILTER_PROTO_ALL, 0, 65535, ICMP_ANY, ICMP_ANY],
    ]);
    expect(priv.inbound.map((x) => [x.num, x.proto, x.portLo, x.icmpType, x.icmpCode])).toEqual([
      [100, FILTER_PROTO_ALL, 0, ICMP_ANY, ICMP_ANY],
      [110, PROTO_TCP, 1024, ICMP_ANY, ICMP_ANY],
      [120, PROTO_UDP, 1024, ICMP_ANY, ICMP_ANY],
      [130, PROTO_ICMP, 0, 0, 0],
    ]);
  });

  it('natlab check on the imported scenario reports the ACL-filtered private subnet as partly (filtered)', async () => {
    const d = mkdtempSync(join(tmpdir(), 'natlab-import-sg-check-'));
    const out = join(d, 'vpc.yaml');
    const imp = await runCli('scenario', 'import', fixture(), '--out', out);
    expect(imp.code, imp.err).toBe(0);
    const c = await runCli('check', '--scenario', out);
    expect(c.out).toMatch(/private\s+10\.0\.1\.0\/24\s+0\.0\.0\.0\/0 -> eni:nat\s+partly \(filtered\)/);
    expect(c.out).toMatch(/udp\/53[^\n]*: nacl-deny/);
    expect(c.code).toBe(0);
  });
});

describe('scenario import: security groups and network ACLs (Terraform state)', () => {
  const TF = 'test/fixtures/import/terraform-vpc-nat-instance';
  const res = (type: string, name: string, values: Record<string, unknown>) => ({
    address: `${type}.${name}`,
    mode: 'managed',
    type,
    name,
    values,
  });
  function tfFixture(): string {
    const d = mkdtempSync(join(tmpdir(), 'natlab-import-tf-sg-'));
    cpSync(TF, d, { recursive: true });
    const p = join(d, 'terraform-show.json');
    const j = JSON.parse(readFileSync(p, 'utf8'));
    const rs = j.values.root_module.resources as Array<{ type: string; values: Record<string, unknown> }>;
    const vpc = rs.find((r) => r.type === 'aws_vpc')!.values.id;
    const priv = rs.find(
      (r) => r.type === 'aws_subnet' && (r.values.tags as Record<string, string>)?.Name === 'private',
    )!.values.id;
    rs.push(
      res('aws_security_group', 'app', {
        id: 'sg-0b2c3d4e5f6a70063',
        name: 'app-sg',
        vpc_id: vpc,
        ingress: [],
        egress: [],
      }),
      // separate rule resources (listed after the group here, but order does not matter)
      res('aws_vpc_security_group_egress_rule', 'app_https', {
        security_group_id: 'sg-0b2c3d4e5f6a70063',
        ip_protocol: 'tcp',
        from_port: 443,
        to_port: 443,
        cidr_ipv4: '0.0.0.0/0',
      }),
      res('aws_security_group_rule', 'app_ping_from_nat', {
        security_group_id: 'sg-0b2c3d4e5f6a70063',
        type: 'ingress',
        protocol: 'icmp',
        from_port: 8,
        to_port: -1,
        source_security_group_id: 'sg-0b2c3d4e5f6a70061',
        cidr_blocks: [],
        ipv6_cidr_blocks: ['::/0'],
      }),
      res('aws_network_acl', 'private', {
        id: 'acl-0b2c3d4e5f6a700a2',
        vpc_id: vpc,
        subnet_ids: [],
        tags: { Name: 'private-acl' },
        ingress: [{ rule_no: 100, action: 'allow', protocol: '-1', cidr_block: '0.0.0.0/0', from_port: 0, to_port: 0 }],
        egress: [{ rule_no: 200, action: 'allow', protocol: '-1', cidr_block: '0.0.0.0/0', from_port: 0, to_port: 0 }],
      }),
      res('aws_network_acl_rule', 'no_dns', {
        network_acl_id: 'acl-0b2c3d4e5f6a700a2',
        rule_number: 90,
        egress: true,
        protocol: '17',
        rule_action: 'deny',
        cidr_block: '0.0.0.0/0',
        from_port: 53,
        to_port: 53,
      }),
      res('aws_network_acl_association', 'private', { network_acl_id: 'acl-0b2c3d4e5f6a700a2', subnet_id: priv }),
    );
    writeFileSync(p, JSON.stringify(j));
    return d;
  }

  it('groups with inline and separate rules, instance groups, ACLs with separate rules and associations', () => {
    const r = importScenario([tfFixture()], []);
    const names = r.scenario.securityGroups!.map((g) => g.name);
    expect(names).toEqual(['nat-sg', 'app-sg']);
    const app = r.scenario.securityGroups![1];
    expect(app.outbound.map((x) => [x.proto, x.portLo, x.portHi, x.cidr])).toEqual([
      [PROTO_TCP, 443, 443, { addr: 0, len: 0 }],
    ]);
    expect(app.inbound.map((x) => [x.proto, x.icmpType, x.group])).toEqual([[PROTO_ICMP, 8, 0]]);
    expect(r.scenario.instances.find((i) => i.name === 'app')?.security?.groups).toEqual([1]);
    const acls = r.scenario.networkAcls!;
    expect(acls.map((a) => [a.name, a.subnets])).toEqual([
      ['acl-0b2c3d4e5f6a700a1', [0]],
      ['private-acl', [1]],
    ]);
    expect(acls[1].outbound.map((x) => [x.num, x.action, x.proto, x.portLo])).toEqual([
      [90, 'deny', PROTO_UDP, 53],
      [200, 'allow', FILTER_PROTO_ALL, 0],
    ]);
    expect(r.skipped.map((x) => `${x.what} — ${x.reason}`).join('\n')).toMatch(
      /security group sg-0b2c3d4e5f6a70063 inbound rule icmp ::\/0 — IPv6 ranges are not modelled/,
    );
  });
});
