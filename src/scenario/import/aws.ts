// AWS CLI JSON (`aws ec2 describe-*` output) → Inventory. Each file's kind is told by its
// top-level key (Vpcs, Subnets, RouteTables, Reservations, NetworkInterfaces, Addresses,
// InternetGateways, NatGateways, SecurityGroups, NetworkAcls); one file may hold several.
// Field names are the EC2 API's (docs/import.md cites the references). Cold path.

import { InputError } from '../../spec/errors.ts';
import { type J, awsNameTag } from './json-reader.ts';
import {
  emptyInventory,
  type InvAclRule,
  type InvFilterRule,
  type InvRoute,
  type InvTarget,
  type Inventory,
  type Skipped,
} from './inventory.ts';

/** Top-level keys of the describe-* outputs natlab reads, and the command that prints each. */
export const AWS_KINDS: Readonly<Record<string, string>> = {
  Vpcs: 'describe-vpcs',
  Subnets: 'describe-subnets',
  RouteTables: 'describe-route-tables',
  Reservations: 'describe-instances',
  NetworkInterfaces: 'describe-network-interfaces',
  Addresses: 'describe-addresses',
  InternetGateways: 'describe-internet-gateways',
  NatGateways: 'describe-nat-gateways',
  SecurityGroups: 'describe-security-groups',
  NetworkAcls: 'describe-network-acls',
};

/** Other describe-* outputs: recognised, reported as skipped (the scenario has no place for them). */
const AWS_SKIPPED_KINDS: Readonly<Record<string, string>> = {
  VpcPeeringConnections: 'VPC peering connections (the scenario has one VPC)',
  TransitGateways: 'transit gateways (not modelled)',
  TransitGatewayAttachments: 'transit gateway attachments (not modelled)',
  VpcEndpoints: 'VPC endpoints (not modelled)',
  EgressOnlyInternetGateways: 'egress-only internet gateways (IPv6, not modelled)',
  VpnGateways: 'virtual private gateways (not modelled)',
  PrefixLists: 'prefix lists (not modelled)',
  ManagedPrefixLists: 'prefix lists (not modelled)',
};

const IGNORED_KEYS = new Set(['NextToken', 'ResponseMetadata']);

/** True when the parsed JSON looks like describe-* output (some known top-level key). */
export function isAwsJson(j: J): boolean {
  return j.isObject && j.keys().some((k) => k in AWS_KINDS || k in AWS_SKIPPED_KINDS);
}

export function readAwsJson(j: J): Inventory {
  const inv = emptyInventory();
  inv.inputs.push(j.file);
  for (const key of j.keys()) {
    const v = j.at(key);
    const src = (x: J): string => `${x.file}: ${x.path}`;
    switch (key) {
      case 'Vpcs':
        for (const x of v.list(true)) {
          const cidrs: string[] = [];
          const primary = x.at('CidrBlock').str();
          for (const a of x.at('CidrBlockAssociationSet').list()) {
            const st = a.at('CidrBlockState').has('State') ? a.at('CidrBlockState').at('State').s() : 'associated';
            const c = a.at('CidrBlock').s();
            if (st === 'associated' || st === 'associating') cidrs.push(c);
            else inv.skipped.push({ what: `VPC CIDR ${c}`, reason: `association state ${st}`, source: src(a) });
          }
          if (primary) {
            if (cidrs.includes(primary)) cidrs.splice(cidrs.indexOf(primary), 1);
            cidrs.unshift(primary);
          }
          for (const a of x.at('Ipv6CidrBlockAssociationSet').list())
            inv.skipped.push({
              what: `VPC IPv6 CIDR ${a.at('Ipv6CidrBlock').str() ?? '?'}`,
              reason: 'IPv6 is not modelled (natlab carries IPv4)',
              source: src(a),
            });
          inv.vpcs.push({ id: x.at('VpcId').s(), name: awsNameTag(x), cidrs, source: src(x) });
        }
        break;
      case 'Subnets':
        for (const x of v.list(true)) {
          const id = x.at('SubnetId').s();
          for (const a of x.at('Ipv6CidrBlockAssociationSet').list())
            inv.skipped.push({
              what: `subnet ${id} IPv6 CIDR ${a.at('Ipv6CidrBlock').str() ?? '?'}`,
              reason: 'IPv6 is not modelled',
              source: src(a),
            });
          const cidr = x.at('CidrBlock').str();
          if (cidr === null) {
            inv.skipped.push({ what: `subnet ${id}`, reason: 'IPv6-only subnet (no IPv4 CidrBlock)', source: src(x) });
            continue;
          }
          inv.subnets.push({ id, name: awsNameTag(x), vpcId: x.at('VpcId').s(), cidr, source: src(x) });
        }
        break;
      case 'RouteTables':
        for (const x of v.list(true)) {
          const id = x.at('RouteTableId').s();
          let main = false;
          const subnetIds: string[] = [];
          for (const a of x.at('Associations').list()) {
            const st = a.at('AssociationState').has('State') ? a.at('AssociationState').at('State').s() : 'associated';
            if (st !== 'associated') continue;
            if (a.at('Main').bool(false)) main = true;
            const sn = a.at('SubnetId').str();
            if (sn) subnetIds.push(sn);
            const gw = a.at('GatewayId').str();
            if (gw)
              inv.skipped.push({
                what: `edge association of route table ${id} with ${gw}`,
                reason: 'gateway route tables (ingress routing) are not modelled',
                source: src(a),
              });
          }
          for (const p of x.at('PropagatingVgws').list())
            inv.skipped.push({
              what: `route propagation from ${p.at('GatewayId').str() ?? '?'} into ${id}`,
              reason: 'VPN gateways are not modelled',
              source: src(p),
            });
          const routes = x
            .at('Routes')
            .list()
            .map((r) => awsRoute(r));
          inv.routeTables.push({
            id,
            name: awsNameTag(x),
            vpcId: x.at('VpcId').s(),
            main,
            subnetIds,
            routes,
            source: src(x),
          });
        }
        break;
      case 'Reservations':
        for (const r of v.list(true))
          for (const x of r.at('Instances').list(true)) {
            const id = x.at('InstanceId').s();
            let primaryEniId: string | null = null;
            for (const n of x.at('NetworkInterfaces').list()) {
              const eni = awsEni(n, id);
              inv.enis.push(eni);
              if (eni.deviceIndex === 0) primaryEniId = eni.id;
            }
            inv.instances.push({
              id,
              name: awsNameTag(x),
              subnetId: x.at('SubnetId').str(),
              privateIp: x.at('PrivateIpAddress').str(),
              publicIp: x.at('PublicIpAddress').str(),
              sourceDestCheck: x.at('SourceDestCheck').bool(null),
              state: x.at('State').has('Name') ? x.at('State').at('Name').s() : '',
              primaryEniId,
              groupIds: x
                .at('SecurityGroups')
                .list()
                .map((g) => g.at('GroupId').s()),
              source: src(x),
            });
            if (x.at('Ipv6Address').str())
              inv.skipped.push({ what: `instance ${id} IPv6 address`, reason: 'IPv6 is not modelled', source: src(x) });
          }
        break;
      case 'NetworkInterfaces':
        for (const n of v.list(true)) inv.enis.push(awsEni(n, null));
        break;
      case 'Addresses':
        for (const x of v.list(true)) {
          inv.eips.push({
            publicIp: x.at('PublicIp').s(),
            allocationId: x.at('AllocationId').str(),
            instanceId: x.at('InstanceId').str() || null,
            eniId: x.at('NetworkInterfaceId').str(),
            privateIp: x.at('PrivateIpAddress').str(),
            source: src(x),
          });
        }
        break;
      case 'InternetGateways':
        for (const x of v.list(true))
          inv.igws.push({
            id: x.at('InternetGatewayId').s(),
            vpcIds: x
              .at('Attachments')
              .list()
              .map((a) => a.at('VpcId').s()),
            source: src(x),
          });
        break;
      case 'NatGateways':
        for (const x of v.list(true)) {
          const addrs = x.at('NatGatewayAddresses').list();
          const primary = addrs.find((a) => a.at('IsPrimary').bool(true)) ?? addrs[0];
          inv.natGateways.push({
            id: x.at('NatGatewayId').s(),
            subnetId: x.at('SubnetId').str(),
            privateIp: primary ? primary.at('PrivateIp').str() : null,
            publicIp: primary ? primary.at('PublicIp').str() : null,
            state: x.at('State').str() ?? '',
            source: src(x),
          });
        }
        break;
      case 'SecurityGroups':
        for (const x of v.list(true)) {
          const id = x.at('GroupId').s();
          const inbound: InvFilterRule[] = [];
          const outbound: InvFilterRule[] = [];
          for (const [k, out] of [
            ['IpPermissions', inbound],
            ['IpPermissionsEgress', outbound],
          ] as const)
            for (const perm of x.at(k).list()) out.push(...awsSgPermission(perm, id, k, inv.skipped));
          inv.securityGroups.push({
            id,
            name: x.at('GroupName').str(),
            vpcId: x.at('VpcId').str(),
            description: x.at('Description').str(),
            inbound,
            outbound,
            source: src(x),
          });
        }
        break;
      case 'NetworkAcls':
        for (const x of v.list(true)) {
          const id = x.at('NetworkAclId').s();
          const inbound: InvAclRule[] = [];
          const outbound: InvAclRule[] = [];
          for (const e of x.at('Entries').list()) {
            const r = awsAclEntry(e, id, inv.skipped);
            if (r) (e.at('Egress').bool(false) ? outbound : inbound).push(r);
          }
          inv.networkAcls.push({
            id,
            name: awsNameTag(x),
            vpcId: x.at('VpcId').str(),
            isDefault: x.at('IsDefault').bool(false) ?? false,
            subnetIds: x
              .at('Associations')
              .list()
              .map((a) => a.at('SubnetId').str())
              .filter((sn): sn is string => !!sn),
            inbound,
            outbound,
            source: src(x),
          });
        }
        break;
      default:
        if (IGNORED_KEYS.has(key)) break;
        if (key in AWS_SKIPPED_KINDS) {
          for (const x of v.list())
            inv.skipped.push({ what: `${key} entry`, reason: AWS_SKIPPED_KINDS[key], source: src(x) });
          break;
        }
        throw new InputError(
          `${j.file}: $.${key}: unknown top-level key (expected the output of aws ec2 ${Object.values(AWS_KINDS).join(', ')})`,
          j.file,
          `$.${key}`,
        );
    }
  }
  return inv;
}

function awsEni(n: J, instanceId: string | null): Inventory['enis'][number] {
  const att = n.at('Attachment');
  const primary = n
    .at('PrivateIpAddresses')
    .list()
    .find((p) => p.at('Primary').bool(false));
  const secondary = n
    .at('PrivateIpAddresses')
    .list()
    .filter((p) => !p.at('Primary').bool(false))
    .map((p) => p.at('PrivateIpAddress').s());
  const assoc = primary?.has('Association')
    ? primary.at('Association')
    : n.has('Association')
      ? n.at('Association')
      : null;
  return {
    id: n.at('NetworkInterfaceId').s(),
    instanceId: instanceId ?? (att.absent ? null : att.at('InstanceId').str()),
    deviceIndex: att.absent ? -1 : att.at('DeviceIndex').num(-1)!,
    subnetId: n.at('SubnetId').str(),
    privateIp: n.at('PrivateIpAddress').str(),
    publicIp: assoc ? assoc.at('PublicIp').str() : null,
    sourceDestCheck: n.at('SourceDestCheck').bool(null),
    secondaryPrivateIps: secondary,
    interfaceType: n.at('InterfaceType').str() ?? 'interface',
    groupIds: n
      .at('Groups')
      .list()
      .map((g) => g.at('GroupId').s()),
    source: `${n.file}: ${n.path}`,
  };
}

/** One entry of a route table's Routes. */
function awsRoute(r: J): InvRoute {
  const dest4 = r.at('DestinationCidrBlock').str();
  const dest6 = r.at('DestinationIpv6CidrBlock').str();
  const pl = r.at('DestinationPrefixListId').str();
  const destText = dest4 ?? dest6 ?? pl ?? '?';
  let target: InvTarget;
  const gw = r.at('GatewayId').str();
  const eni = r.at('NetworkInterfaceId').str();
  const inst = r.at('InstanceId').str();
  if (r.at('NatGatewayId').str()) target = { kind: 'nat-gateway', id: r.at('NatGatewayId').s() };
  else if (eni || inst) target = { kind: 'eni', eniId: eni, instanceId: inst };
  else if (gw === 'local') target = { kind: 'local' };
  else if (gw?.startsWith('igw-')) target = { kind: 'igw', id: gw };
  else if (gw)
    target = {
      kind: 'unsupported',
      what: gw.startsWith('vgw-') ? 'virtual private gateway' : gw.startsWith('vpce-') ? 'VPC endpoint' : 'gateway',
      id: gw,
    };
  else {
    const other: Array<[string, string]> = [
      ['VpcPeeringConnectionId', 'VPC peering connection'],
      ['TransitGatewayId', 'transit gateway'],
      ['EgressOnlyInternetGatewayId', 'egress-only internet gateway'],
      ['CarrierGatewayId', 'carrier gateway'],
      ['LocalGatewayId', 'local gateway'],
      ['CoreNetworkArn', 'Cloud WAN core network'],
    ];
    const hit = other.find(([k]) => r.at(k).str());
    target = hit
      ? { kind: 'unsupported', what: hit[1], id: r.at(hit[0]).s() }
      : { kind: 'unsupported', what: 'unknown target', id: '?' };
  }
  return {
    dest: dest4,
    destText,
    target,
    blackhole: r.at('State').str() === 'blackhole',
    source: `${r.file}: ${r.path}`,
  };
}

/** AWS protocol numbers written as names in the scenario. */
export const PROTO_NAMES: Readonly<Record<string, string>> = { '-1': 'all', '6': 'tcp', '17': 'udp', '1': 'icmp' };
/** IPv6's ICMP (IpProtocol icmpv6 / 58): only meets IPv6 traffic, which natlab does not carry. */
export const ICMPV6 = new Set(['icmpv6', '58']);

/**
 * The protocol/ports/ICMP part of a rule. AWS encodes ICMP type and code in FromPort/ToPort (SG)
 * or IcmpTypeCode (ACL), -1 = any; TCP/UDP port ranges in FromPort/ToPort or PortRange.
 */
export function awsMatch(proto: string, lo: number | null, hi: number | null): Omit<InvFilterRule, 'source'> {
  const p = PROTO_NAMES[proto] ?? proto.toLowerCase();
  const m: Omit<InvFilterRule, 'source'> = { protocol: p };
  if (p === 'tcp' || p === 'udp') {
    if (lo !== null && hi !== null && lo >= 0 && !(lo === 0 && hi === 65535))
      m.ports = lo === hi ? `${lo}` : `${lo}-${hi}`;
  } else if (p === 'icmp') {
    if (lo !== null && lo >= 0) {
      m.icmpType = lo;
      if (hi !== null && hi >= 0) m.icmpCode = hi;
    }
  }
  return m;
}

/** One IpPermissions entry → one scenario rule per IPv4 range and per group; the rest skipped. */
function awsSgPermission(perm: J, groupId: string, key: string, skipped: Skipped[]): InvFilterRule[] {
  const dir = key === 'IpPermissions' ? 'inbound' : 'outbound';
  const proto = perm.at('IpProtocol').str() ?? '-1';
  const where = (x: J): string => `${x.file}: ${x.path}`;
  if (ICMPV6.has(proto.toLowerCase())) {
    skipped.push({
      what: `security group ${groupId} ${dir} rule icmpv6`,
      reason: 'ICMPv6 is IPv6 (not modelled: natlab carries IPv4)',
      source: where(perm),
    });
    return [];
  }
  const m = awsMatch(proto, perm.at('FromPort').num(null), perm.at('ToPort').num(null));
  const out: InvFilterRule[] = [];
  const desc = (x: J): { description?: string } => {
    const d = x.at('Description').str();
    return d ? { description: d } : {};
  };
  for (const r of perm.at('IpRanges').list())
    out.push({ ...m, cidr: r.at('CidrIp').s(), ...desc(r), source: where(r) });
  for (const g of perm.at('UserIdGroupPairs').list()) {
    const peer = g.at('VpcPeeringConnectionId').str();
    if (peer) {
      skipped.push({
        what: `security group ${groupId} ${dir} rule ${m.protocol} naming group ${g.at('GroupId').str() ?? '?'} across ${peer}`,
        reason: 'groups of a peered VPC are not in the scenario (it has one VPC)',
        source: where(g),
      });
      continue;
    }
    out.push({ ...m, groupId: g.at('GroupId').s(), ...desc(g), source: where(g) });
  }
  for (const r of perm.at('Ipv6Ranges').list())
    skipped.push({
      what: `security group ${groupId} ${dir} rule ${m.protocol}${m.ports ? ` ${m.ports}` : ''} ${r.at('CidrIpv6').str() ?? '?'}`,
      reason: 'IPv6 ranges are not modelled (natlab carries IPv4)',
      source: where(r),
    });
  for (const r of perm.at('PrefixListIds').list())
    skipped.push({
      what: `security group ${groupId} ${dir} rule ${m.protocol}${m.ports ? ` ${m.ports}` : ''} ${r.at('PrefixListId').str() ?? '?'}`,
      reason:
        "prefix lists are not in the scenario (a rule names one CIDR or group): add the list's CIDRs as rules by hand",
      source: where(r),
    });
  return out;
}

/** AWS's implicit last rule (`*`, number 32767; 32768 for IPv6): the scenario's "no match: deny". */
const ACL_IMPLICIT_MIN = 32767;

/** One Entries element of a network ACL → a scenario rule (null when skipped or implicit). */
function awsAclEntry(e: J, aclId: string, skipped: Skipped[]): InvAclRule | null {
  const num = e.at('RuleNumber').num(0) ?? 0;
  if (num >= ACL_IMPLICIT_MIN) return null;
  const dir = e.at('Egress').bool(false) ? 'outbound' : 'inbound';
  const where = `${e.file}: ${e.path}`;
  const action = e.at('RuleAction').s();
  const proto = e.at('Protocol').str() ?? '-1';
  const cidr = e.at('CidrBlock').str();
  if (cidr === null || ICMPV6.has(proto.toLowerCase())) {
    skipped.push({
      what: `network ACL ${aclId} ${dir} rule ${num} (${action} ${e.at('Ipv6CidrBlock').str() ?? proto})`,
      reason: 'IPv6 entries are not modelled (natlab carries IPv4)',
      source: where,
    });
    return null;
  }
  if (action !== 'allow' && action !== 'deny')
    throw new InputError(
      `${where}.RuleAction: expected allow or deny, got '${action}'`,
      e.file,
      `${e.path}.RuleAction`,
    );
  const pr = e.at('PortRange');
  const ic = e.at('IcmpTypeCode');
  const m =
    (PROTO_NAMES[proto] ?? proto) === 'icmp'
      ? awsMatch(proto, ic.absent ? null : ic.at('Type').num(null), ic.absent ? null : ic.at('Code').num(null))
      : awsMatch(proto, pr.absent ? null : pr.at('From').num(null), pr.absent ? null : pr.at('To').num(null));
  return { ...m, rule: num, action, cidr, source: where };
}
