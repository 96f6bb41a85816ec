// Terraform state (`terraform show -json`) → Inventory. Reads values.root_module.resources and
// child_modules recursively; attribute names are the AWS provider's (docs/import.md cites the
// references). Resource types natlab does not use are reported as skipped. Cold path.

import { InputError } from '../../spec/errors.ts';
import { ICMPV6, PROTO_NAMES, awsMatch } from './aws.ts';
import type { J } from './json-reader.ts';
import {
  emptyInventory,
  type InvAclRule,
  type InvFilterRule,
  type InvRoute,
  type InvTarget,
  type Inventory,
  type Skipped,
} from './inventory.ts';

/** True when the parsed JSON is `terraform show -json` output of a state. */
export function isTerraformJson(j: J): boolean {
  return j.isObject && j.has('format_version') && (j.has('values') || j.has('terraform_version'));
}

interface Res {
  address: string;
  type: string;
  mode: string;
  v: J;
}

function collect(mod: J, out: Res[], depth: number): void {
  if (depth > 64) mod.fail('child_modules nested more than 64 deep');
  for (const r of mod.at('resources').list()) {
    out.push({
      address: r.at('address').s(),
      type: r.at('type').s(),
      mode: r.at('mode').str() ?? 'managed',
      v: r.at('values'),
    });
  }
  for (const c of mod.at('child_modules').list()) collect(c, out, depth + 1);
}

function tagName(v: J): string | null {
  const t = v.at('tags');
  if (!t.isObject) return null;
  return t.at('Name').str();
}

/** A Terraform string attribute, treating "" as absent (the provider writes "" for unset ids). */
function s(v: J, key: string): string | null {
  if (!v.isObject) return null;
  const x = v.at(key).str();
  return x === '' ? null : x;
}

function tfTarget(r: J): InvTarget {
  const gw = s(r, 'gateway_id');
  const nat = s(r, 'nat_gateway_id');
  const eni = s(r, 'network_interface_id');
  const inst = s(r, 'instance_id');
  if (nat) return { kind: 'nat-gateway', id: nat };
  if (eni || inst) return { kind: 'eni', eniId: eni, instanceId: inst };
  if (gw === 'local') return { kind: 'local' };
  if (gw?.startsWith('igw-')) return { kind: 'igw', id: gw };
  if (gw) return { kind: 'unsupported', what: gw.startsWith('vgw-') ? 'virtual private gateway' : 'gateway', id: gw };
  const other: Array<[string, string]> = [
    ['vpc_peering_connection_id', 'VPC peering connection'],
    ['transit_gateway_id', 'transit gateway'],
    ['vpc_endpoint_id', 'VPC endpoint'],
    ['egress_only_gateway_id', 'egress-only internet gateway'],
    ['carrier_gateway_id', 'carrier gateway'],
    ['local_gateway_id', 'local gateway'],
    ['core_network_arn', 'Cloud WAN core network'],
  ];
  const hit = other.find(([k]) => s(r, k));
  return hit
    ? { kind: 'unsupported', what: hit[1], id: s(r, hit[0])! }
    : { kind: 'unsupported', what: 'unknown target', id: '?' };
}

function tfRoute(r: J, destKey: string, dest6Key: string, plKey: string, source: string): InvRoute {
  const d4 = s(r, destKey);
  const destText = d4 ?? s(r, dest6Key) ?? s(r, plKey) ?? '?';
  return { dest: d4, destText, target: tfTarget(r), blackhole: s(r, 'state') === 'blackhole', source };
}

const NOT_MODELLED: Readonly<Record<string, string>> = {
  aws_vpc_peering_connection: 'VPC peering is not modelled (the scenario has one VPC)',
  aws_ec2_transit_gateway: 'transit gateways are not modelled',
  aws_ec2_transit_gateway_vpc_attachment: 'transit gateways are not modelled',
  aws_vpc_endpoint: 'VPC endpoints are not modelled',
  aws_egress_only_internet_gateway: 'IPv6 (egress-only internet gateway) is not modelled',
  aws_vpn_gateway: 'VPN gateways are not modelled',
  aws_vpc_ipv6_cidr_block_association: 'IPv6 is not modelled',
};

/** One ingress/egress block of aws_security_group (or an aws_security_group_rule): one rule per IPv4 CIDR and group. */
function tfSgRules(b: J, groupId: string, dir: string, source: string, skipped: Skipped[]): InvFilterRule[] {
  const proto = s(b, 'protocol') ?? '-1';
  const m = awsMatch(proto, b.at('from_port').num(null), b.at('to_port').num(null));
  const strs = (k: string): string[] =>
    b
      .at(k)
      .list()
      .map((x) => x.s())
      .filter((x) => x !== '');
  const desc = s(b, 'description');
  const d = desc ? { description: desc } : {};
  const what = `security group ${groupId} ${dir === 'ingress' ? 'inbound' : 'outbound'} rule ${m.protocol}${m.ports ? ` ${m.ports}` : ''}`;
  if (ICMPV6.has(proto.toLowerCase())) {
    skipped.push({ what, reason: 'ICMPv6 is IPv6 (not modelled: natlab carries IPv4)', source });
    return [];
  }
  const out: InvFilterRule[] = [];
  for (const c of strs('cidr_blocks')) out.push({ ...m, cidr: c, ...d, source });
  const groups = [
    ...strs('security_groups'),
    ...(s(b, 'source_security_group_id') ? [s(b, 'source_security_group_id')!] : []),
  ];
  if (b.at('self').bool(false)) groups.push(groupId);
  for (const g of groups) out.push({ ...m, groupId: g, ...d, source });
  for (const c of strs('ipv6_cidr_blocks'))
    skipped.push({ what: `${what} ${c}`, reason: 'IPv6 ranges are not modelled (natlab carries IPv4)', source });
  for (const c of strs('prefix_list_ids'))
    skipped.push({
      what: `${what} ${c}`,
      reason:
        "prefix lists are not in the scenario (a rule names one CIDR or group): add the list's CIDRs as rules by hand",
      source,
    });
  return out;
}

/** One ingress/egress block of aws_network_acl (or an aws_network_acl_rule). */
function tfAclRule(
  e: J,
  numKey: string,
  aclId: string,
  dir: string,
  source: string,
  skipped: Skipped[],
): InvAclRule | null {
  const num = e.at(numKey).num(0) ?? 0;
  const action = s(e, numKey === 'rule_no' ? 'action' : 'rule_action') ?? '';
  const proto = s(e, 'protocol') ?? '-1';
  const cidr = s(e, 'cidr_block');
  const where = `network ACL ${aclId} ${dir === 'ingress' ? 'inbound' : 'outbound'} rule ${num}`;
  if (cidr === null || ICMPV6.has(proto.toLowerCase())) {
    skipped.push({
      what: `${where} (${action} ${s(e, 'ipv6_cidr_block') ?? proto})`,
      reason: 'IPv6 entries are not modelled (natlab carries IPv4)',
      source,
    });
    return null;
  }
  if (action !== 'allow' && action !== 'deny')
    throw new InputError(`${source}: ${where}: action: expected allow or deny, got '${action}'`, source, 'action');
  const p = PROTO_NAMES[proto] ?? proto.toLowerCase();
  const m =
    p === 'icmp'
      ? awsMatch(proto, e.at('icmp_type').num(null), e.at('icmp_code').num(null))
      : awsMatch(proto, e.at('from_port').num(null), e.at('to_port').num(null));
  return { ...m, rule: num, action, cidr, source };
}

export function readTerraformJson(j: J): Inventory {
  const inv = emptyInventory();
  inv.inputs.push(j.file);
  const res: Res[] = [];
  const values = j.at('values');
  if (!values.absent) collect(values.at('root_module'), res, 0);
  const src = (r: Res): string => `${j.file}: ${r.address}`;
  const mainTables = new Map<string, string>(); // vpc id → main route table id
  const extraRoutes: Array<{ table: string; route: InvRoute }> = [];
  const sgRules: Array<{ groupId: string; dir: string; rules: InvFilterRule[]; source: string }> = [];
  const aclRules: Array<{ acl: string; dir: string; rule: InvAclRule | null; source: string }> = [];
  const aclAssocs: Array<{ acl: string; subnet: string; source: string }> = [];
  const assocs: Array<{ table: string; subnet: string }> = [];
  const cidrAssocs: Array<{ vpc: string; cidr: string; source: string }> = [];
  let dataSources = 0;
  for (const r of res) {
    if (r.mode !== 'managed') {
      dataSources++;
      continue;
    }
    const v = r.v;
    switch (r.type) {
      case 'aws_vpc': {
        const id = v.at('id').s();
        inv.vpcs.push({ id, name: tagName(v), cidrs: [v.at('cidr_block').s()], source: src(r) });
        const main = s(v, 'main_route_table_id');
        if (main) mainTables.set(id, main);
        if (s(v, 'ipv6_cidr_block'))
          inv.skipped.push({
            what: `VPC ${id} IPv6 CIDR ${s(v, 'ipv6_cidr_block')}`,
            reason: 'IPv6 is not modelled',
            source: src(r),
          });
        break;
      }
      case 'aws_vpc_ipv4_cidr_block_association':
        cidrAssocs.push({ vpc: v.at('vpc_id').s(), cidr: v.at('cidr_block').s(), source: src(r) });
        break;
      case 'aws_subnet':
        inv.subnets.push({
          id: v.at('id').s(),
          name: tagName(v),
          vpcId: v.at('vpc_id').s(),
          cidr: v.at('cidr_block').s(),
          source: src(r),
        });
        if (s(v, 'ipv6_cidr_block'))
          inv.skipped.push({
            what: `subnet ${v.at('id').s()} IPv6 CIDR ${s(v, 'ipv6_cidr_block')}`,
            reason: 'IPv6 is not modelled',
            source: src(r),
          });
        break;
      case 'aws_route_table':
      case 'aws_default_route_table': {
        const id = v.at('id').s();
        const routes = v
          .at('route')
          .list()
          .map((x) =>
            tfRoute(
              x,
              'cidr_block',
              'ipv6_cidr_block',
              'destination_prefix_list_id',
              `${src(r)}: ${x.path.replace(/^\$\./, '')}`,
            ),
          );
        const vpcId = v.at('vpc_id').s();
        inv.routeTables.push({
          id,
          name: tagName(v),
          vpcId,
          main: r.type === 'aws_default_route_table',
          subnetIds: [],
          routes,
          source: src(r),
        });
        for (const p of v.at('propagating_vgws').list())
          inv.skipped.push({
            what: `route propagation from ${p.s()} into ${id}`,
            reason: 'VPN gateways are not modelled',
            source: src(r),
          });
        break;
      }
      case 'aws_main_route_table_association':
        mainTables.set(v.at('vpc_id').s(), v.at('route_table_id').s());
        break;
      case 'aws_route_table_association':
        if (s(v, 'subnet_id')) assocs.push({ table: v.at('route_table_id').s(), subnet: s(v, 'subnet_id')! });
        else
          inv.skipped.push({
            what: `edge association of ${v.at('route_table_id').s()} with ${s(v, 'gateway_id') ?? '?'}`,
            reason: 'gateway route tables (ingress routing) are not modelled',
            source: src(r),
          });
        break;
      case 'aws_route':
        extraRoutes.push({
          table: v.at('route_table_id').s(),
          route: tfRoute(
            v,
            'destination_cidr_block',
            'destination_ipv6_cidr_block',
            'destination_prefix_list_id',
            src(r),
          ),
        });
        break;
      case 'aws_instance': {
        const id = v.at('id').s();
        const eni = s(v, 'primary_network_interface_id');
        inv.instances.push({
          id,
          name: tagName(v),
          subnetId: s(v, 'subnet_id'),
          privateIp: s(v, 'private_ip'),
          publicIp: s(v, 'public_ip'),
          sourceDestCheck: v.at('source_dest_check').bool(null),
          state: s(v, 'instance_state') ?? '',
          primaryEniId: eni,
          groupIds: v
            .at('vpc_security_group_ids')
            .list()
            .map((x) => x.s()),
          source: src(r),
        });
        if (eni)
          inv.enis.push({
            id: eni,
            instanceId: id,
            deviceIndex: 0,
            subnetId: s(v, 'subnet_id'),
            privateIp: s(v, 'private_ip'),
            publicIp: s(v, 'public_ip'),
            sourceDestCheck: v.at('source_dest_check').bool(null),
            secondaryPrivateIps: v
              .at('secondary_private_ips')
              .list()
              .map((x) => x.s()),
            interfaceType: 'interface',
            groupIds: v
              .at('vpc_security_group_ids')
              .list()
              .map((x) => x.s()),
            source: src(r),
          });
        if (v.at('ipv6_addresses').list().length)
          inv.skipped.push({ what: `instance ${id} IPv6 addresses`, reason: 'IPv6 is not modelled', source: src(r) });
        break;
      }
      case 'aws_network_interface': {
        const att = v.at('attachment').list()[0];
        const ips = v
          .at('private_ips')
          .list()
          .map((x) => x.s());
        const primary = s(v, 'private_ip') ?? ips[0] ?? null;
        inv.enis.push({
          id: v.at('id').s(),
          instanceId: att ? s(att, 'instance') : null,
          deviceIndex: att ? att.at('device_index').num(-1)! : -1,
          subnetId: s(v, 'subnet_id'),
          privateIp: primary,
          publicIp: null,
          sourceDestCheck: v.at('source_dest_check').bool(null),
          secondaryPrivateIps: ips.filter((x) => x !== primary),
          interfaceType: s(v, 'interface_type') ?? 'interface',
          groupIds: v
            .at('security_groups')
            .list()
            .map((x) => x.s()),
          source: src(r),
        });
        break;
      }
      case 'aws_network_interface_attachment': {
        const e = inv.enis.find((x) => x.id === v.at('network_interface_id').s());
        if (e) {
          e.instanceId = v.at('instance_id').s();
          e.deviceIndex = v.at('device_index').num(-1)!;
        }
        break;
      }
      case 'aws_eip':
        inv.eips.push({
          publicIp: v.at('public_ip').s(),
          allocationId: s(v, 'allocation_id') ?? s(v, 'id'),
          instanceId: s(v, 'instance'),
          eniId: s(v, 'network_interface'),
          privateIp: s(v, 'private_ip') ?? s(v, 'associate_with_private_ip'),
          source: src(r),
        });
        break;
      case 'aws_eip_association': {
        const e = inv.eips.find((x) => x.allocationId === s(v, 'allocation_id') || x.publicIp === s(v, 'public_ip'));
        if (e) {
          e.instanceId = s(v, 'instance_id') ?? e.instanceId;
          e.eniId = s(v, 'network_interface_id') ?? e.eniId;
          e.privateIp = s(v, 'private_ip_address') ?? e.privateIp;
        } else if (s(v, 'public_ip')) {
          inv.eips.push({
            publicIp: s(v, 'public_ip')!,
            allocationId: s(v, 'allocation_id'),
            instanceId: s(v, 'instance_id'),
            eniId: s(v, 'network_interface_id'),
            privateIp: s(v, 'private_ip_address'),
            source: src(r),
          });
        }
        break;
      }
      case 'aws_nat_gateway':
        inv.natGateways.push({
          id: v.at('id').s(),
          subnetId: s(v, 'subnet_id'),
          privateIp: s(v, 'private_ip'),
          publicIp: s(v, 'public_ip'),
          state: 'available',
          source: src(r),
        });
        break;
      case 'aws_internet_gateway':
        inv.igws.push({ id: v.at('id').s(), vpcIds: s(v, 'vpc_id') ? [s(v, 'vpc_id')!] : [], source: src(r) });
        break;
      case 'aws_internet_gateway_attachment': {
        const g = inv.igws.find((x) => x.id === v.at('internet_gateway_id').s());
        if (g) g.vpcIds.push(v.at('vpc_id').s());
        break;
      }
      case 'aws_security_group':
      case 'aws_default_security_group': {
        const id = v.at('id').s();
        const inbound: InvFilterRule[] = [];
        const outbound: InvFilterRule[] = [];
        for (const [k, out] of [
          ['ingress', inbound],
          ['egress', outbound],
        ] as const)
          for (const b of v.at(k).list()) out.push(...tfSgRules(b, id, k, src(r), inv.skipped));
        inv.securityGroups.push({
          id,
          name: s(v, 'name'),
          vpcId: s(v, 'vpc_id'),
          description: s(v, 'description'),
          inbound,
          outbound,
          source: src(r),
        });
        break;
      }
      case 'aws_security_group_rule': {
        const g = v.at('security_group_id').s();
        const dir = s(v, 'type') === 'egress' ? 'egress' : 'ingress';
        sgRules.push({ groupId: g, dir, rules: tfSgRules(v, g, dir, src(r), inv.skipped), source: src(r) });
        break;
      }
      case 'aws_vpc_security_group_ingress_rule':
      case 'aws_vpc_security_group_egress_rule': {
        const g = v.at('security_group_id').s();
        const dir = r.type.endsWith('ingress_rule') ? 'ingress' : 'egress';
        const m = awsMatch(s(v, 'ip_protocol') ?? '-1', v.at('from_port').num(null), v.at('to_port').num(null));
        const rules: InvFilterRule[] = [];
        const cidr = s(v, 'cidr_ipv4');
        const ref = s(v, 'referenced_security_group_id');
        if (ICMPV6.has(m.protocol) || s(v, 'cidr_ipv6'))
          inv.skipped.push({
            what: `security group rule ${r.address}`,
            reason: 'IPv6 is not modelled (natlab carries IPv4)',
            source: src(r),
          });
        else if (s(v, 'prefix_list_id'))
          inv.skipped.push({
            what: `security group rule ${r.address} (${s(v, 'prefix_list_id')})`,
            reason:
              "prefix lists are not in the scenario (a rule names one CIDR or group): add the list's CIDRs as rules by hand",
            source: src(r),
          });
        else if (cidr) rules.push({ ...m, cidr, source: src(r) });
        else if (ref) rules.push({ ...m, groupId: ref, source: src(r) });
        sgRules.push({ groupId: g, dir, rules, source: src(r) });
        break;
      }
      case 'aws_network_acl':
      case 'aws_default_network_acl': {
        const inbound: InvAclRule[] = [];
        const outbound: InvAclRule[] = [];
        const id = v.at('id').s();
        for (const [k, out] of [
          ['ingress', inbound],
          ['egress', outbound],
        ] as const)
          for (const e of v.at(k).list()) {
            const x = tfAclRule(e, 'rule_no', id, k, src(r), inv.skipped);
            if (x) out.push(x);
          }
        inv.networkAcls.push({
          id,
          name: tagName(v),
          vpcId: s(v, 'vpc_id'),
          isDefault: r.type === 'aws_default_network_acl',
          subnetIds: v
            .at('subnet_ids')
            .list()
            .map((x) => x.s()),
          inbound,
          outbound,
          source: src(r),
        });
        break;
      }
      case 'aws_network_acl_rule': {
        const dir = v.at('egress').bool(false) ? 'egress' : 'ingress';
        const acl = v.at('network_acl_id').s();
        aclRules.push({ acl, dir, rule: tfAclRule(v, 'rule_number', acl, dir, src(r), inv.skipped), source: src(r) });
        break;
      }
      case 'aws_network_acl_association':
        aclAssocs.push({ acl: v.at('network_acl_id').s(), subnet: v.at('subnet_id').s(), source: src(r) });
        break;
      default:
        inv.skipped.push({
          what: `${r.address}`,
          reason: NOT_MODELLED[r.type] ?? `resource type ${r.type} does not affect the NAT path natlab models`,
          source: src(r),
        });
    }
  }
  for (const a of cidrAssocs) {
    const vpc = inv.vpcs.find((x) => x.id === a.vpc);
    if (vpc) {
      if (!vpc.cidrs.includes(a.cidr)) vpc.cidrs.push(a.cidr);
    } else
      inv.skipped.push({
        what: `CIDR ${a.cidr} of ${a.vpc}`,
        reason: `VPC ${a.vpc} is not in the state`,
        source: a.source,
      });
  }
  for (const { table, route } of extraRoutes) {
    const t = inv.routeTables.find((x) => x.id === table);
    if (t) {
      if (!t.routes.some((x) => x.destText === route.destText)) t.routes.push(route);
    } else
      inv.skipped.push({
        what: `route ${route.destText} in ${table}`,
        reason: `route table ${table} is not in the state`,
        source: route.source,
      });
  }
  for (const { table, subnet } of assocs) {
    const t = inv.routeTables.find((x) => x.id === table);
    if (t) t.subnetIds.push(subnet);
    else
      inv.skipped.push({
        what: `association of subnet ${subnet} with ${table}`,
        reason: `route table ${table} is not in the state`,
        source: j.file,
      });
  }
  for (const [vpc, table] of mainTables) {
    const t = inv.routeTables.find((x) => x.id === table);
    if (t && t.vpcId === vpc) t.main = true;
  }
  for (const x of sgRules) {
    const g = inv.securityGroups.find((y) => y.id === x.groupId);
    if (g) (x.dir === 'ingress' ? g.inbound : g.outbound).push(...x.rules);
    else
      inv.skipped.push({
        what: `security group rule ${x.source}`,
        reason: `security group ${x.groupId} is not in the state`,
        source: x.source,
      });
  }
  for (const x of aclRules) {
    const a = inv.networkAcls.find((y) => y.id === x.acl);
    if (!x.rule) continue;
    if (!a) {
      inv.skipped.push({
        what: `network ACL rule ${x.source}`,
        reason: `network ACL ${x.acl} is not in the state`,
        source: x.source,
      });
      continue;
    }
    const list = x.dir === 'ingress' ? a.inbound : a.outbound;
    // The ACL's own ingress/egress (refreshed state) may list the same entry: keep one.
    if (!list.some((y) => y.rule === x.rule!.rule)) list.push(x.rule);
  }
  for (const x of aclAssocs) {
    const a = inv.networkAcls.find((y) => y.id === x.acl);
    if (a) {
      for (const o of inv.networkAcls) o.subnetIds = o.subnetIds.filter((sn) => sn !== x.subnet);
      a.subnetIds.push(x.subnet);
    } else
      inv.skipped.push({
        what: `association of subnet ${x.subnet} with ${x.acl}`,
        reason: `network ACL ${x.acl} is not in the state`,
        source: x.source,
      });
  }
  if (dataSources)
    inv.skipped.push({
      what: `${dataSources} data source${dataSources === 1 ? '' : 's'}`,
      reason: 'data sources only look things up; the managed resources describe the VPC',
      source: j.file,
    });
  return inv;
}
