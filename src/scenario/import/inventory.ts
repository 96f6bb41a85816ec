// The cloud side of an import, independent of where it came from (AWS CLI JSON or Terraform
// state): VPCs, subnets, route tables, instances with their ENIs, Elastic IPs, and everything the
// scenario cannot express, kept so it is reported (never silently dropped). build.ts turns an
// Inventory plus the NAT instances' own configuration into a scenario file.

/** Something the scenario cannot express: reported on stderr and as a comment in the YAML. */
export interface Skipped {
  /** What it is: `route 0.0.0.0/0 → nat-0a1b (route table private)`, `security group sg-1 (web)`. */
  what: string;
  /** Why it is not in the scenario. */
  reason: string;
  /** Where it came from: `file: $.RouteTables[1].Routes[1]` or a Terraform address. */
  source: string;
}

export interface InvVpc {
  id: string;
  name: string | null;
  /** IPv4 CIDR blocks in association order (the primary first). */
  cidrs: string[];
  source: string;
}

export interface InvSubnet {
  id: string;
  name: string | null;
  vpcId: string;
  cidr: string;
  source: string;
}

export type InvTarget =
  | { kind: 'local' }
  | { kind: 'igw'; id: string }
  | { kind: 'eni'; eniId: string | null; instanceId: string | null }
  | { kind: 'nat-gateway'; id: string }
  /** VPC peering, transit gateway, VPN gateway, endpoint, egress-only IGW, ...: not in the scenario. */
  | { kind: 'unsupported'; what: string; id: string };

export interface InvRoute {
  /** IPv4 destination CIDR, or null for IPv6 / prefix-list destinations (`destText` says which). */
  dest: string | null;
  destText: string;
  target: InvTarget;
  /** AWS State 'blackhole' (the target is gone, e.g. a terminated instance's ENI). */
  blackhole: boolean;
  source: string;
}

export interface InvRouteTable {
  id: string;
  name: string | null;
  vpcId: string;
  main: boolean;
  /** Subnets explicitly associated with it. */
  subnetIds: string[];
  routes: InvRoute[];
  source: string;
}

export interface InvEni {
  id: string;
  instanceId: string | null;
  /** Attachment device index (0 = the instance's primary ENI), -1 when not attached. */
  deviceIndex: number;
  subnetId: string | null;
  privateIp: string | null;
  /** Public IPv4 associated with the primary private IP (Elastic IP or auto-assigned). */
  publicIp: string | null;
  sourceDestCheck: boolean | null;
  secondaryPrivateIps: string[];
  /** AWS InterfaceType ('interface', 'nat_gateway', 'vpc_endpoint', ...). */
  interfaceType: string;
  /** Its security groups' ids (empty when the input does not say). */
  groupIds: string[];
  source: string;
}

export interface InvInstance {
  id: string;
  name: string | null;
  subnetId: string | null;
  privateIp: string | null;
  publicIp: string | null;
  sourceDestCheck: boolean | null;
  /** 'running', 'stopped', 'terminated', ... ('' when unknown). */
  state: string;
  primaryEniId: string | null;
  /** The instance's security groups (describe-instances SecurityGroups), used when no ENI says. */
  groupIds: string[];
  source: string;
}

export interface InvEip {
  publicIp: string;
  allocationId: string | null;
  instanceId: string | null;
  eniId: string | null;
  privateIp: string | null;
  source: string;
}

export interface InvNatGateway {
  id: string;
  subnetId: string | null;
  privateIp: string | null;
  publicIp: string | null;
  state: string;
  source: string;
}

export interface InvIgw {
  id: string;
  vpcIds: string[];
  source: string;
}

/**
 * One rule of a security group or network ACL, already in the scenario's form
 * (docs/scenarios.md "Security groups and network ACLs"); `groupId` is the AWS id of the group a
 * security group rule names (build.ts turns it into the group's scenario name).
 */
export interface InvFilterRule {
  protocol: string;
  ports?: string;
  icmpType?: number;
  icmpCode?: number;
  cidr?: string;
  groupId?: string;
  description?: string;
  source: string;
}

export interface InvSecurityGroup {
  id: string;
  name: string | null;
  vpcId: string | null;
  description: string | null;
  inbound: InvFilterRule[];
  outbound: InvFilterRule[];
  source: string;
}

export interface InvAclRule extends InvFilterRule {
  rule: number;
  action: 'allow' | 'deny';
}

export interface InvNetworkAcl {
  id: string;
  name: string | null;
  vpcId: string | null;
  isDefault: boolean;
  subnetIds: string[];
  inbound: InvAclRule[];
  outbound: InvAclRule[];
  source: string;
}

export interface Inventory {
  vpcs: InvVpc[];
  subnets: InvSubnet[];
  routeTables: InvRouteTable[];
  enis: InvEni[];
  instances: InvInstance[];
  eips: InvEip[];
  natGateways: InvNatGateway[];
  igws: InvIgw[];
  securityGroups: InvSecurityGroup[];
  networkAcls: InvNetworkAcl[];
  skipped: Skipped[];
  /** The inputs the inventory was read from (for the YAML header). */
  inputs: string[];
}

export function emptyInventory(): Inventory {
  return {
    vpcs: [],
    subnets: [],
    routeTables: [],
    enis: [],
    instances: [],
    eips: [],
    natGateways: [],
    igws: [],
    securityGroups: [],
    networkAcls: [],
    skipped: [],
    inputs: [],
  };
}

/** Adds `b` into `a`, merging records with the same id (later fields fill in missing ones). */
export function mergeInventory(a: Inventory, b: Inventory): void {
  const mergeById = <T extends { id: string }>(xs: T[], ys: T[]): void => {
    for (const y of ys) {
      const x = xs.find((e) => e.id === y.id);
      if (!x) xs.push(y);
      else
        for (const [k, v] of Object.entries(y)) {
          const cur = (x as Record<string, unknown>)[k];
          if (cur === null || cur === undefined || cur === '' || (Array.isArray(cur) && cur.length === 0))
            (x as Record<string, unknown>)[k] = v;
        }
    }
  };
  mergeById(a.vpcs, b.vpcs);
  mergeById(a.subnets, b.subnets);
  mergeById(a.routeTables, b.routeTables);
  mergeById(a.enis, b.enis);
  mergeById(a.instances, b.instances);
  mergeById(a.natGateways, b.natGateways);
  mergeById(a.igws, b.igws);
  mergeById(a.securityGroups, b.securityGroups);
  mergeById(a.networkAcls, b.networkAcls);
  for (const e of b.eips) if (!a.eips.some((x) => x.publicIp === e.publicIp)) a.eips.push(e);
  a.skipped.push(...b.skipped);
  a.inputs.push(...b.inputs);
}
