// Scenario vocabulary: the validated, compiled form every engine consumes.
// The loader (src/scenario/) turns YAML/JSON files into this; engines never see raw files.
// Addresses are uint32 numbers (host order, e.g. 10.0.0.1 = 0x0a000001), never strings.

import type { InstanceSecurity, NetworkAcl, SecurityGroup } from './aws-filters.ts';
import type { ConntrackTimeouts } from './timeouts.ts';

export interface Cidr {
  addr: number; // network address, uint32, host bits zero
  len: number; // prefix length 0..32
}

export const TARGET_LOCAL = 'local';
export const TARGET_IGW = 'igw';
export const TARGET_ENI = 'eni';
export const TARGET_BLACKHOLE = 'blackhole';
export const TARGET_NAT_GATEWAY = 'nat-gateway';
export type RouteTargetKind = 'local' | 'igw' | 'eni' | 'blackhole' | 'nat-gateway';

export interface Route {
  dest: Cidr;
  target: RouteTargetKind;
  /**
   * For target 'eni': the index into Scenario.instances of the instance owning the ENI; for
   * target 'nat-gateway': the index into Scenario.natGateways; -1 otherwise.
   */
  instance: number;
}

export interface RouteTable {
  name: string;
  routes: Route[];
}

export interface Subnet {
  name: string;
  cidr: Cidr;
  /** Index into Scenario.routeTables. */
  routeTable: number;
}

export interface Sysctls {
  /** net.ipv4.ip_forward */
  ipForward: boolean;
  /** net.ipv4.conf.all.send_redirects */
  sendRedirectsAll: boolean;
  /** net.ipv4.conf.eth0.send_redirects */
  sendRedirectsEth0: boolean;
  /**
   * net.ipv4.icmp_ratelimit, ms: the per-destination token bucket's cost of one rate-limited ICMP
   * error the instance generates (burst 6, `inet_peer_xrlim_allow`); 0 = no per-destination limit.
   */
  icmpRatelimit: number;
  /** net.ipv4.icmp_ratemask: bit n set = ICMP type n is rate-limited (default 0x1818). */
  icmpRatemask: number;
  /** net.ipv4.icmp_msgs_per_sec: the instance-wide limiter's refill rate (`icmp_global_allow`). */
  icmpMsgsPerSec: number;
  /** net.ipv4.icmp_msgs_burst: the instance-wide limiter's credit cap. */
  icmpMsgsBurst: number;
}

/** A port or address match with iptables' `!` negation. */
export interface CidrMatch {
  cidr: Cidr;
  neg: boolean;
}
export interface PortMatch {
  lo: number;
  hi: number;
  neg: boolean;
}
export interface IfaceMatch {
  /** Interface name; a trailing '+' is a prefix wildcard, as in iptables. */
  name: string;
  neg: boolean;
}
export interface ProtoMatch {
  proto: number; // 0 = all
  neg: boolean;
}

/** NAT range flags, as include/uapi/linux/netfilter/nf_nat.h. */
export const NF_NAT_RANGE_MAP_IPS = 1;
export const NF_NAT_RANGE_PROTO_SPECIFIED = 2;
export const NF_NAT_RANGE_PROTO_RANDOM = 4;
export const NF_NAT_RANGE_PERSISTENT = 8;
export const NF_NAT_RANGE_PROTO_RANDOM_FULLY = 16;

export type NatTargetKind = 'MASQUERADE' | 'SNAT' | 'DNAT' | 'ACCEPT' | 'RETURN';

export interface NatTarget {
  kind: NatTargetKind;
  /** SNAT/DNAT address range (MASQUERADE: 0/0, chosen from the out interface). */
  addrLo: number;
  addrHi: number;
  /** Port range when `flags & NF_NAT_RANGE_PROTO_SPECIFIED` (MASQUERADE --to-ports, SNAT/DNAT :ports). */
  portLo: number;
  portHi: number;
  /** NF_NAT_RANGE_* bits. */
  flags: number;
}

export interface NatRule {
  src: CidrMatch | null;
  dst: CidrMatch | null;
  inIface: IfaceMatch | null;
  outIface: IfaceMatch | null;
  proto: ProtoMatch | null;
  sport: PortMatch | null;
  dport: PortMatch | null;
  target: NatTarget;
  /** The rule as written (`-A POSTROUTING -o eth0 -s 10.0.0.0/16 -j MASQUERADE`), for listings. */
  text: string;
}

export type NatChainName = 'PREROUTING' | 'INPUT' | 'OUTPUT' | 'POSTROUTING';
export const NAT_CHAINS: readonly NatChainName[] = ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'];

export interface NatTable {
  chains: Record<NatChainName, NatRule[]>;
  /** iptables-save text the table was parsed from (the kernel oracle loads exactly this). */
  text: string;
}

/** The mangle chains a scenario may hold rules in (natlab models the forwarding path's two). */
export type MangleChainName = 'FORWARD' | 'POSTROUTING';
export const MANGLE_CHAINS: readonly MangleChainName[] = ['FORWARD', 'POSTROUTING'];
/** Every built-in chain of the mangle table (iptables-save declares all five). */
export const MANGLE_ALL_CHAINS = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'] as const;

/** `-m tcp --tcp-flags MASK COMP` (flag bits as in the TCP header's byte 13), with `!`. */
export interface TcpFlagsMatch {
  mask: number;
  cmp: number;
  neg: boolean;
}

/** xt_TCPMSS's marker for `--clamp-mss-to-pmtu` (XT_TCPMSS_CLAMP_PMTU). */
export const TCPMSS_CLAMP_PMTU = 0xffff;

export type MangleTargetKind = 'TCPMSS' | 'ACCEPT' | 'RETURN';

export interface MangleRule {
  src: CidrMatch | null;
  dst: CidrMatch | null;
  inIface: IfaceMatch | null;
  outIface: IfaceMatch | null;
  proto: ProtoMatch | null;
  /** The L4 match module the rule loads (`-m tcp`/`-m udp`, implied by --sport/--dport/--tcp-flags): it drops a packet whose header it cannot read. */
  l4Match: 'tcp' | 'udp' | null;
  sport: PortMatch | null;
  dport: PortMatch | null;
  tcpFlags: TcpFlagsMatch | null;
  target: MangleTargetKind;
  /** TCPMSS: the MSS to set (`--set-mss`), or TCPMSS_CLAMP_PMTU. */
  mss: number;
  /** Canonical iptables-save line. */
  text: string;
}

/** The mangle table of an instance (rules in FORWARD and POSTROUTING; the other chains empty). */
export interface MangleTable {
  chains: Record<MangleChainName, MangleRule[]>;
  /** Canonical iptables-save text of the table (`*mangle` ... `COMMIT`). */
  text: string;
}

/** The filter table's built-in chains (natlab models all three). */
export type FilterChainName = 'INPUT' | 'FORWARD' | 'OUTPUT';
export const FILTER_CHAINS: readonly FilterChainName[] = ['INPUT', 'FORWARD', 'OUTPUT'];

/** xt_conntrack / xt_state state bits (XT_CONNTRACK_STATE_BIT(ctinfo) = 1 << (ctinfo % IP_CT_IS_REPLY + 1)). */
export const CTSTATE_INVALID = 1;
export const CTSTATE_ESTABLISHED = 2;
export const CTSTATE_RELATED = 4;
export const CTSTATE_NEW = 8;
export const CTSTATE_UNTRACKED = 16;
/** State names in the order iptables-save prints them (libxt_conntrack print_state). */
export const CTSTATE_NAMES: ReadonlyArray<[string, number]> = [
  ['INVALID', CTSTATE_INVALID],
  ['NEW', CTSTATE_NEW],
  ['RELATED', CTSTATE_RELATED],
  ['ESTABLISHED', CTSTATE_ESTABLISHED],
  ['UNTRACKED', CTSTATE_UNTRACKED],
];

/** `-m conntrack [!] --ctstate S,...` or `-m state [!] --state S,...`. */
export interface CtStateMatch {
  /** CTSTATE_* bits. */
  states: number;
  neg: boolean;
  module: 'conntrack' | 'state';
}

/** `-m multiport [!] --sports|--dports|--ports p[:q],...` (at most 15 ports, a range counting 2). */
export interface MultiportMatch {
  dir: 'sports' | 'dports' | 'ports';
  lo: number[];
  hi: number[];
  neg: boolean;
}

/** libxt_icmp: type 255 = any; `type/code` or a name. */
export const ICMP_TYPE_ANY = 255;
export interface IcmpTypeMatch {
  type: number;
  codeLo: number;
  codeHi: number;
  neg: boolean;
}

/** ipt_REJECT's --reject-with (enum ipt_reject_with). */
export type RejectWith =
  | 'icmp-net-unreachable'
  | 'icmp-host-unreachable'
  | 'icmp-port-unreachable'
  | 'icmp-proto-unreachable'
  | 'icmp-net-prohibited'
  | 'icmp-host-prohibited'
  | 'icmp-admin-prohibited'
  | 'tcp-reset';

/** A filter rule's target: a verdict, LOG (counts and continues), RETURN or a jump to a user chain. */
export type FilterTargetKind = 'ACCEPT' | 'DROP' | 'REJECT' | 'LOG' | 'RETURN' | 'JUMP';

/** The matches of an iptables rule (the shared rule-option parser reads them for every table). */
export interface RuleMatches {
  src: CidrMatch | null;
  dst: CidrMatch | null;
  inIface: IfaceMatch | null;
  outIface: IfaceMatch | null;
  proto: ProtoMatch | null;
  /** `-m tcp`/`-m udp` (explicit or implied by --sport/--dport/--tcp-flags/--syn). */
  l4Match: 'tcp' | 'udp' | null;
  sport: PortMatch | null;
  dport: PortMatch | null;
  tcpFlags: TcpFlagsMatch | null;
  /** `-m icmp` (explicit, or implied by --icmp-type). */
  icmp: IcmpTypeMatch | null;
  multiport: MultiportMatch | null;
  ctstate: CtStateMatch | null;
}

export interface FilterRule extends RuleMatches {
  target: FilterTargetKind;
  /** JUMP: the user chain. */
  chain: string;
  /** REJECT: what is sent back. */
  rejectWith: RejectWith;
  /** LOG: --log-prefix (kept for the text; natlab's LOG only counts). */
  logPrefix: string | null;
  /** LOG: --log-level (syslog 0..7, default 4). */
  logLevel: number;
  /** Canonical iptables-save line. */
  text: string;
}

/** The filter table of an instance: built-in chains with policies, and user chains. */
export interface FilterTable {
  policy: Record<FilterChainName, 'ACCEPT' | 'DROP'>;
  /** Rules per chain: the built-in ones and every user chain (in declaration order). */
  chains: Record<string, FilterRule[]>;
  /** User chains in declaration order. */
  userChains: string[];
  /** Canonical iptables-save text of the table (`*filter` ... `COMMIT`). */
  text: string;
}

/**
 * MTU of every instance's ENI (AWS: jumbo frames inside a VPC). TCPMSS --clamp-mss-to-pmtu
 * clamps to this minus 40; the kernel engine gives its links this MTU.
 */
export const INSTANCE_MTU = 9001;

export interface Instance {
  name: string;
  /** Index into Scenario.subnets. */
  subnet: number;
  privateIp: number;
  /** Elastic (public) IP mapped 1:1 by the IGW, or null. */
  elasticIp: number | null;
  sourceDestCheck: boolean;
  sysctls: Sysctls;
  /** The instance's nat table; null = no netfilter NAT (a plain host). */
  nat: NatTable | null;
  /** The ENI's security groups (spec/aws-filters.ts); absent = the ENI is not filtered. */
  security?: InstanceSecurity;
  /** The instance's mangle table (TCPMSS rules), given in its iptables text; absent/null = empty. */
  mangle?: MangleTable | null;
  /** The instance's filter table, given in its iptables text; absent/null = none (everything accepted). */
  filter?: FilterTable | null;
  /** Stopped by a timeline event (spec/timeline.ts); absent = running. Loaders never set it. */
  stopped?: boolean;
}

export interface ConntrackSettings {
  max: number;
  timeouts: ConntrackTimeouts;
  /** nf_conntrack_tcp_loose (mid-stream pickup), default true. */
  tcpLoose: boolean;
  /** nf_conntrack_checksum (verify L4 checksums in PREROUTING), default true. */
  checksum: boolean;
  /**
   * nf_conntrack_tcp_ignore_invalid_rst: an RST below the other direction's highest ACK is
   * accepted (and closes) instead of INVALID. Default false (absent = false).
   */
  tcpIgnoreInvalidRst?: boolean;
  /**
   * nf_conntrack_tcp_be_liberal: window tracking marks nothing INVALID (out-of-window segments are
   * accepted; the RST sequence check still applies). Default false (absent = false), as on a NAT instance.
   */
  tcpBeLiberal?: boolean;
  /**
   * nf_conntrack_tcp_max_retrans: after this many identical retransmissions without an acceptable
   * ACK the entry's timeout is capped at `timeouts.tcpMaxRetrans`. Default 3 (absent = 3).
   */
  tcpMaxRetrans?: number;
}

/** nf_conntrack_tcp_max_retrans's default (nf_conntrack_tcp_init_net). */
export const DEFAULT_TCP_MAX_RETRANS = 3;

/** One private IPv4 address of a NAT gateway and the Elastic IP the IGW maps to it (null: none). */
export interface NatGatewayAddress {
  privateIp: number;
  elasticIp: number | null;
}

/** How a NAT gateway picks the source port of a new connection (AWS does not document it). */
export type NatGatewayPortSelection = 'random' | 'preserve';

/**
 * An AWS NAT gateway (docs/semantics.md "NAT gateway"): a managed NAT in a subnet, not an
 * instance — no conntrack/iptables, no security groups, no ingress point of its own.
 */
export interface NatGateway {
  name: string;
  /** Index into Scenario.subnets (its route table routes what the gateway sends). */
  subnet: number;
  /** addresses[0] is the primary private IP; up to 7 secondary ones follow (AWS: 8 in all). */
  addresses: NatGatewayAddress[];
  /** Simultaneous connections per (NAT address, destination IP, destination port, protocol); AWS: 55,000. */
  connectionLimit: number;
  /** Seconds without a packet after which a connection is gone; AWS: 350. */
  idleTimeout: number;
  /** Source port choice: 'random' (default) or 'preserve' (the client's port when free). */
  portSelection: NatGatewayPortSelection;
}

export interface Scenario {
  name: string;
  /** Path the scenario was loaded from ('<built-in>' for generated ones). */
  source: string;
  vpcCidr: Cidr;
  subnets: Subnet[];
  routeTables: RouteTable[];
  instances: Instance[];
  /** Internet hosts: addresses or ranges outside the VPC that frames may come from. */
  internetHosts: Cidr[];
  conntrack: ConntrackSettings;
  /** NAT gateways; absent (or empty) in scenarios without any — they behave exactly as before. */
  natGateways?: NatGateway[];
  /** Security groups instances refer to (spec/aws-filters.ts); absent = none. */
  securityGroups?: SecurityGroup[];
  /** Network ACLs; a subnet in none has the default ACL (allows everything). Absent = none. */
  networkAcls?: NetworkAcl[];
  /** Changes at capture times (spec/timeline.ts), in time order; absent = none. */
  timeline?: TimelineEvent[];
}

/** A scenario timeline event's change (spec/timeline.ts has the functions that apply it). */
export type TimelineAction =
  | { kind: 'stopInstance'; instance: number }
  | { kind: 'startInstance'; instance: number }
  /** Route `route` (index into routeTables[routeTable].routes) gets a new target (AWS ReplaceRoute). */
  | { kind: 'replaceRoute'; routeTable: number; route: number; target: RouteTargetKind; targetIndex: number }
  /** The ENI of instance `from` is attached to the running instance `to` (same configuration); empty conntrack. */
  | { kind: 'moveEni'; from: number; to: number }
  /** The Elastic IP of instance `from` is associated with instance `to` (which has none). */
  | { kind: 'moveElasticIp'; from: number; to: number }
  /** Every security group's rules and every ACL's entries as they are after the event (Engine.setFilterRules). */
  | {
      kind: 'setFilterRules';
      securityGroups: SecurityGroup[];
      networkAcls: NetworkAcl[];
      /** The group or ACL the event named (setSecurityGroupRules / setNetworkAclEntries). */
      changed: { what: 'group' | 'acl'; name: string };
    };

export interface TimelineEvent {
  /** Seconds after the first packet (absolute: false) or the capture time in µs since the epoch (absolute: true). */
  at: number;
  absolute: boolean;
  action: TimelineAction;
  /** The event as one line (`stopInstance nat-a`), for reports. */
  text: string;
}

/**
 * Ingress/egress points. 0 is the internet (beyond the IGW); 1 + i is instance i's ENI.
 * A frame injected at an instance's point was sent by that instance; a frame output there was
 * delivered to it.
 */
export const POINT_INTERNET = 0;
export function instancePoint(instanceIndex: number): number {
  return 1 + instanceIndex;
}
export function pointInstance(point: number): number {
  return point - 1;
}
export function pointName(s: Scenario, point: number): string {
  if (point === POINT_INTERNET) return 'internet';
  const inst = s.instances[point - 1];
  return inst ? inst.name : `point-${point}`;
}
