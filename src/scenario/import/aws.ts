// AWS CLI JSON (`aws ec2 describe-*` output) → Inventory. Each file's kind is told by its
// top-level key (Vpcs, Subnets, RouteTables, Reservations, NetworkInterfaces, Addresses,
// InternetGateways, NatGateways, SecurityGroups, NetworkAcls); one file may hold several.
// Field names are the EC2 API's (docs/import.md cites the references). Cold path.

import { InputError } from '../../spec/errors.ts';
import { type J, awsNameTag } from './json-reader.ts';
import { emptyInventory, type InvRoute, type InvTarget, type Inventory } from './inventory.ts';

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
          const inb = x.at('IpPermissions').list().length;
          const outb = x.at('IpPermissionsEgress').list().length;
          inv.filters.push({
            kind: 'security group',
            id: x.at('GroupId').s(),
            name: x.at('GroupName').str(),
            vpcId: x.at('VpcId').str(),
            summary: `${inb} inbound, ${outb} outbound permission${outb === 1 ? '' : 's'}`,
            allowsAll: false,
            source: src(x),
          });
        }
        break;
      case 'NetworkAcls':
        for (const x of v.list(true)) {
          const entries = x.at('Entries').list();
          const denies = entries.filter(
            (e) => e.at('RuleAction').str() === 'deny' && e.at('RuleNumber').num(0) !== 32767,
          );
          const allowAll = entries.filter(
            (e) =>
              e.at('RuleAction').str() === 'allow' &&
              e.at('Protocol').str() === '-1' &&
              e.at('CidrBlock').str() === '0.0.0.0/0',
          );
          const allowsAll =
            denies.length === 0 &&
            allowAll.some((e) => e.at('Egress').bool(false)) &&
            allowAll.some((e) => !e.at('Egress').bool(false));
          inv.filters.push({
            kind: 'network ACL',
            id: x.at('NetworkAclId').s(),
            name: awsNameTag(x),
            vpcId: x.at('VpcId').str(),
            summary: `${entries.length} entries, ${x.at('Associations').list().length} subnet associations`,
            allowsAll,
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
