// AWS filtering layers around the instances (docs/semantics.md §11): security groups on ENIs
// (stateful, allow-only, with their own connection tracking per ENI) and network ACLs on subnets
// (stateless, numbered allow/deny rules). Compiled, engine-neutral form; the loader
// (src/scenario/security-groups.ts) builds it, every engine evaluates it on its own.

/** An IPv4 CIDR as in spec/scenario.ts (addr uint32, host bits zero; len 0..32). */
interface Cidr {
  addr: number;
  len: number;
}

/** Protocol "all" (AWS IpProtocol -1). */
export const FILTER_PROTO_ALL = -1;
/** ICMP type/code "any" (AWS -1). */
export const ICMP_ANY = -1;

/** What a security-group or ACL rule matches, besides the remote address. */
export interface FilterMatch {
  /** IP protocol number, or FILTER_PROTO_ALL. */
  proto: number;
  /** TCP/UDP port range (inclusive; 0..65535 = all). Other protocols: 0..65535, ignored. */
  portLo: number;
  portHi: number;
  /** ICMP (proto 1) type and code, ICMP_ANY = any. Other protocols: ICMP_ANY. */
  icmpType: number;
  icmpCode: number;
}

export interface SgRule extends FilterMatch {
  /** Remote CIDR (inbound: the source; outbound: the destination), or null when `group` is set. */
  cidr: Cidr | null;
  /** Index into Scenario.securityGroups of the referenced group (its members' private IPs), or -1. */
  group: number;
}

export interface SecurityGroup {
  name: string;
  inbound: SgRule[];
  outbound: SgRule[];
}

/** Per-ENI security-group connection tracking settings (AWS ConnectionTrackingSpecification). */
export interface SgTracking {
  /** Seconds an idle established TCP flow stays tracked (AWS: 60..432000, default 432000). */
  tcpEstablished: number;
  /** Seconds an idle UDP flow with at most one request-response stays tracked (AWS: 30..60, default 30). */
  udp: number;
  /** Seconds an idle UDP stream (more than one request-response) stays tracked (AWS: 60..180, default 180). */
  udpStream: number;
  /** Tracked flows the ENI may hold; a new tracked flow beyond it is dropped (conntrack_allowance_exceeded). */
  allowance: number;
}

export const ACL_ALLOW = 'allow';
export const ACL_DENY = 'deny';

export interface AclRule extends FilterMatch {
  /** Rule number 1..32766; rules are evaluated lowest first, the first match decides. */
  num: number;
  action: 'allow' | 'deny';
  cidr: Cidr;
}

export interface NetworkAcl {
  name: string;
  /** Indexes into Scenario.subnets of the associated subnets (a subnet has at most one ACL). */
  subnets: number[];
  /** Sorted by rule number. Nothing matched: deny (the `*` rule). */
  inbound: AclRule[];
  outbound: AclRule[];
}

/** The ENI's security groups and tracking settings (Instance.security; absent: not filtered). */
export interface InstanceSecurity {
  /** Indexes into Scenario.securityGroups. */
  groups: number[];
  tracking: SgTracking;
}

/** AWS defaults (EC2 API ConnectionTrackingConfiguration) and natlab's stated allowance default. */
export const SG_TCP_ESTABLISHED_DEFAULT = 432000;
export const SG_UDP_DEFAULT = 30;
export const SG_UDP_STREAM_DEFAULT = 180;
/** AWS publishes no per-ENI number (it depends on the instance type): natlab's default. */
export const SG_ALLOWANCE_DEFAULT = 262144;
/** AWS documented ranges of the three timeouts. */
export const SG_TCP_ESTABLISHED_RANGE: readonly [number, number] = [60, 432000];
export const SG_UDP_RANGE: readonly [number, number] = [30, 60];
export const SG_UDP_STREAM_RANGE: readonly [number, number] = [60, 180];
/** Not configurable on AWS; natlab's values (docs/semantics.md §11). */
export const SG_TCP_UNREPLIED_TIMEOUT = 120;
export const SG_ICMP_TIMEOUT = 30;
/** AWS: other protocols are tracked by address and protocol for 600 s. */
export const SG_OTHER_TIMEOUT = 600;

export function defaultSgTracking(): SgTracking {
  return {
    tcpEstablished: SG_TCP_ESTABLISHED_DEFAULT,
    udp: SG_UDP_DEFAULT,
    udpStream: SG_UDP_STREAM_DEFAULT,
    allowance: SG_ALLOWANCE_DEFAULT,
  };
}
