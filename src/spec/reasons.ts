// Verdict vocabulary shared by every engine (model, core, kernel) so that a diff compares *why*
// as well as *whether*. Codes are small integers (hot-path friendly); names are for reports.
// Adding a reason: append to REASONS (never renumber: codes are saved in corpora/).

/** What finally happened to an input packet. */
export const FATE_DELIVERED = 0; // left the system: reached an instance's ENI or the internet
export const FATE_DROPPED = 1;

export const REASON_NONE = 0;
/** IPv4 header unusable (see the parse status in `detail`): Linux drops it in ip_rcv. */
export const DROP_MALFORMED = 1;
/** Not IPv4 (ARP, IPv6, ...): natlab's engines only carry IPv4. */
export const DROP_NOT_IPV4 = 2;
/** IPv4 fragment: Linux defrag holds it for reassembly; natlab does not reassemble. */
export const DROP_FRAGMENT = 3;
/** VPC router: no route in the subnet's route table. */
export const DROP_NO_ROUTE = 4;
/** VPC router: route target is `blackhole`. */
export const DROP_BLACKHOLE = 5;
/** ENI source/dest check: the instance sent a packet whose source is not its own address. */
export const DROP_SRC_DST_CHECK_SRC = 6;
/** ENI source/dest check: a packet for the instance whose destination is not its own address. */
export const DROP_SRC_DST_CHECK_DST = 7;
/** IGW: outbound from a private address that has no Elastic IP. */
export const DROP_IGW_NO_PUBLIC_IP = 8;
/** IGW: inbound to a public address that maps to no ENI. */
export const DROP_IGW_UNKNOWN_DST = 9;
/** NAT instance: net.ipv4.ip_forward = 0 and the packet is not for the instance itself. */
export const DROP_IP_FORWARD_OFF = 10;
/** NAT instance: TTL would reach 0 when forwarding (an ICMP time exceeded is sent back). */
export const DROP_TTL_EXCEEDED = 11;
/** Conntrack: table full and no non-ASSURED entry to early-drop. */
export const DROP_CT_TABLE_FULL = 12;
/** NAT: no unique tuple in the allowed range (port exhaustion) or reply-tuple clash. */
export const DROP_NAT_CLASH = 13;
/** NAT: RELATED ICMP error whose ICMP checksum is bad (nf_nat_icmp_reply_translation). */
export const DROP_ICMP_BAD_CHECKSUM = 14;
/** Replay: the frame's source lives nowhere in the scenario (no ENI, not an internet host). */
export const DROP_NO_INGRESS = 15;
/** Kernel engine: nothing was seen at any egress point (the kernel does not say why). */
export const DROP_KERNEL_UNSEEN = 16;
/** Packet addressed to an instance's own address arrived; delivered to its stack (not forwarded). */
export const DROP_LOCAL_DELIVERY = 17;
/** MASQUERADE found no address on the out interface ("ate my IP address"). */
export const DROP_MASQ_NO_ADDRESS = 18;
/** A packet that would leave by the interface it came in on from the internet side, looping. */
export const DROP_ROUTING_LOOP = 19;
/** VPC router: a `local` route matched but no ENI in the VPC has the destination address. */
export const DROP_NO_HOST = 20;
/** Conntrack marked the packet INVALID and a ruleset would drop it (reserved; natlab's default nat-only rulesets forward INVALID un-NATed). */
export const DROP_CT_INVALID = 21;
/** NAT: RELATED ICMP redirect for a connection that has NAT (nf_nat_icmp_reply_translation drops it). */
export const DROP_ICMP_REDIRECT_NAT = 22;
/** Instance: the packet's source is the receiving instance's own address — a martian source (__fib_validate_source, accept_local = 0). */
export const DROP_MARTIAN_SOURCE = 23;
/** VPC router: a multicast (224.0.0.0/4) or limited broadcast (255.255.255.255) destination; the VPC carries neither. */
export const DROP_MULTICAST = 24;
/** NAT gateway: a protocol other than TCP, UDP and ICMP, or an ICMP message other than echo (docs/semantics.md "NAT gateway"). */
export const DROP_NATGW_PROTOCOL = 25;
/** NAT gateway: a TCP or ICMP fragment (dropped), or a UDP fragment natlab cannot map (no ports). */
export const DROP_NATGW_FRAGMENT = 26;
/** NAT gateway: no free source port — the connection limit per destination and NAT address is reached (ErrorPortAllocation). */
export const DROP_NATGW_PORT_ALLOCATION = 27;
/** NAT gateway: a TCP packet from inside of no known connection (e.g. idle > 350 s): answered with an RST. */
export const DROP_NATGW_IDLE_TIMEOUT = 28;
/** NAT gateway: a packet from outside that belongs to no connection. */
export const DROP_NATGW_NO_CONNECTION = 29;
/** Security group: no rule of the ENI's groups allows the packet and it belongs to no tracked flow. */
export const DROP_SG_DENY = 30;
/** Network ACL: a deny rule (or the final `*` rule) matched where the packet crosses a subnet boundary. */
export const DROP_NACL_DENY = 31;
/** Security group: the ENI's tracked-connection allowance is used up (AWS metric conntrack_allowance_exceeded). */
export const DROP_SG_ALLOWANCE = 32;
/** A mangle rule dropped a TCP packet whose header it cannot read: TCPMSS (data offset < 5 or beyond the packet) or its tcp match (under 20 bytes). */
export const DROP_TCPMSS = 33;
/** The NAT instance's filter table dropped the packet: a DROP rule, a chain's policy DROP, or a match that could not read its header. */
export const DROP_FILTER_DROP = 34;
/** The NAT instance's filter table rejected the packet (-j REJECT): dropped, answered with an ICMP error or a TCP reset. */
export const DROP_FILTER_REJECT = 35;
/** The packet reached (or was sent by) an instance a timeline event stopped (docs/semantics.md §14). */
export const DROP_INSTANCE_STOPPED = 36;

export const REASONS: readonly string[] = [
  'none',
  'malformed',
  'not-ipv4',
  'fragment',
  'no-route',
  'blackhole',
  'src-dst-check-src',
  'src-dst-check-dst',
  'igw-no-public-ip',
  'igw-unknown-dst',
  'ip-forward-off',
  'ttl-exceeded',
  'ct-table-full',
  'nat-clash',
  'icmp-bad-checksum',
  'no-ingress',
  'kernel-unseen',
  'local-delivery',
  'masq-no-address',
  'routing-loop',
  'no-host',
  'ct-invalid',
  'icmp-redirect-nat',
  'martian-source',
  'multicast',
  'natgw-protocol',
  'natgw-fragment',
  'natgw-port-allocation',
  'natgw-idle-timeout',
  'natgw-no-connection',
  'sg-deny',
  'nacl-deny',
  'sg-allowance',
  'tcpmss',
  'filter-drop',
  'filter-reject',
  'instance-stopped',
];
export const REASON_COUNT = REASONS.length;

export function reasonName(code: number): string {
  return REASONS[code] ?? `reason-${code}`;
}

export function reasonCode(name: string): number {
  const i = REASONS.indexOf(name);
  if (i < 0) throw new Error(`unknown reason name '${name}'`);
  return i;
}

/** Conntrack classification of a packet at the NAT instance (iptables `-m state`). */
export const CT_NONE = 0; // packet never reached a NAT instance's conntrack
export const CT_NEW = 1;
export const CT_ESTABLISHED = 2;
export const CT_RELATED = 3;
export const CT_INVALID = 4;
export const CT_NAMES: readonly string[] = ['none', 'NEW', 'ESTABLISHED', 'RELATED', 'INVALID'];
