// The requirements `natlab conformance` judges: RFC 4787 (UDP), 5382 (TCP), 5508 (ICMP) and
// 7857 (their updates). Each row says what the RFC asks, at what level, and — for a failure —
// why Linux does what it does and what changes it (kernel source; scenario keys and sysctls).

export type Level = 'MUST' | 'MUST NOT' | 'SHOULD' | 'SHOULD NOT' | 'RECOMMENDED' | 'MAY' | 'INFO';

export interface Requirement {
  /** Stable id: '<rfc>-<label>', e.g. '4787-REQ-1'. */
  id: string;
  rfc: string;
  /** The RFC's own label (REQ-n or section). */
  label: string;
  level: Level;
  title: string;
  /** Linux's reason, printed when the verdict is fail (and the knob that changes it). */
  linux: string;
  /**
   * The NAT gateway's reason (docs/semantics.md §10: what AWS documents, or natlab's stated
   * choice where it documents nothing), printed instead of `linux` when a NAT gateway is probed.
   */
  natGateway: string;
}

const R = (id: string, level: Level, title: string, linux = ''): Requirement => {
  const [rfc, ...rest] = id.split('-');
  return { id, rfc: `RFC ${rfc}`, label: rest.join('-'), level, title, linux, natGateway: GATEWAY_REASONS[id] ?? '' };
};

const PER_CONNECTION =
  "AWS documents no mapping behaviour; natlab's NAT gateway maps per connection (a port is unique per NAT address, destination and protocol, as the 55,000-per-destination limit implies) and chooses the port by the scenario's portSelection (default random; 'preserve' keeps the client's port while it is free, which then looks endpoint-independent)";
const NO_HAIRPIN =
  "AWS documents no hairpinning; in natlab a packet from inside to the gateway's own Elastic IP leaves for the internet and comes back through the IGW as a packet of no connection (natgw-no-connection)";
const NO_ICMP_ERRORS =
  'natlab translates ICMP echo only: ICMP errors are dropped in both directions (natgw-protocol) — a natlab limit; AWS documents ICMP support without saying which types (docs/semantics.md §10)';

/** The NAT gateway's reason per requirement id, for a failure (docs/semantics.md §10). */
const GATEWAY_REASONS: Record<string, string> = {
  '4787-REQ-1': PER_CONNECTION,
  '5382-REQ-1': PER_CONNECTION,
  '4787-REQ-3ab': 'AWS: a NAT gateway uses source ports 1024-65535 only (NAT gateway basics), whatever the client port',
  '4787-REQ-4': `${PER_CONNECTION}; a random port keeps parity by chance only`,
  '4787-REQ-8':
    "natlab's NAT gateway lets in only packets of a connection (the remote address and port it was opened to): address-and-port-dependent filtering; AWS documents that it accepts no unsolicited inbound connection, not the filtering granularity",
  '5382-REQ-3':
    'as 4787 REQ-8: only the remote endpoint a connection was opened to gets in (natgw-no-connection otherwise)',
  '4787-REQ-9': NO_HAIRPIN,
  '5382-REQ-8': NO_HAIRPIN,
  '5508-REQ-7': `${NO_HAIRPIN}; ${NO_ICMP_ERRORS}`,
  '4787-REQ-14':
    'AWS forwards UDP fragments and drops TCP and ICMP ones; natlab translates the first UDP fragment (it carries the ports) and drops later ones: it tracks no fragments (docs/semantics.md §10)',
  '5382-REQ-5':
    'AWS: a NAT gateway\'s idle timeout is 350 s and cannot be changed (NAT gateway basics; Troubleshoot NAT gateways: "Internet connection drops after 350 seconds"); scenario natGateways.<name>.idleTimeout',
  '7857-2.1': 'the idle timeout (350 s) applies in every state',
  '5508-REQ-4': NO_ICMP_ERRORS,
  '5508-REQ-5': NO_ICMP_ERRORS,
  '4787-REQ-12': NO_ICMP_ERRORS,
  '5382-REQ-10': NO_ICMP_ERRORS,
  '5508-REQ-2': 'the idle timeout (350 s) applies to ICMP echo too',
  '4787-REQ-5': 'the idle timeout (350 s) applies to UDP too',
  '4787-REQ-5c': 'the idle timeout (350 s) applies to UDP too',
  '7857-7.1':
    "natlab's NAT gateway restarts a connection's idle timer on every packet of it, an RST too (AWS documents the 350 s idle timeout, not what refreshes it); ICMP errors are dropped and refresh nothing",
  '7857-2.2': 'an RST closes the connection; natlab keeps it until the idle timeout (AWS documents no shorter one)',
};

export const REQUIREMENTS: readonly Requirement[] = [
  // RFC 4787: UDP
  R(
    '4787-REQ-1',
    'MUST',
    'endpoint-independent mapping (UDP)',
    "Linux maps per connection: the external port stays the same only because MASQUERADE/SNAT keeps a free source port (get_unique_tuple: the original tuple first) or reuses the source's current mapping (find_appropriate_src); --random / --random-fully skip both (nf_nat_core.c), so every destination gets its own port",
  ),
  R(
    '4787-REQ-2',
    'RECOMMENDED',
    'IP address pooling "paired"',
    'SNAT to an address range picks the address per connection by hash of the addresses (find_best_ips_proto); --persistent pairs them',
  ),
  R(
    '4787-REQ-3',
    'MUST NOT',
    'port overloading (keep a port already in use towards the same destination)',
    'nf_nat_used_tuple() makes get_unique_tuple search another port',
  ),
  R(
    '4787-REQ-3ab',
    'RECOMMENDED',
    'port range kept (0-1023 -> 0-1023, 1024-65535 -> 1024-65535)',
    'nf_nat_l4proto_unique_tuple() searches 1-511, 600-1023 or 1024-65535 by the original port unless --to-ports gives a range',
  ),
  R('4787-4.2.1', 'INFO', 'port preservation', ''),
  R(
    '4787-REQ-4',
    'RECOMMENDED',
    'port parity preserved',
    'Linux keeps parity only by keeping the port itself; a search (--random, --random-fully, a clash) picks any port (nf_nat_l4proto_unique_tuple)',
  ),
  R('4787-4.2.3', 'INFO', 'port contiguity', ''),
  R(
    '4787-REQ-5',
    'MUST',
    'UDP mapping timer >= 2 min',
    'nf_conntrack_udp_packet(): nf_conntrack_udp_timeout (30 s) until the flow has been two-way for more than 2 s, then nf_conntrack_udp_timeout_stream (120 s); scenario conntrack.timeouts.udp / udpStream (sysctls net.netfilter.nf_conntrack_udp_timeout, _stream)',
  ),
  R(
    '4787-REQ-5c',
    'RECOMMENDED',
    'UDP mapping timer default >= 5 min',
    'nf_conntrack_udp_timeout_stream is 120 s by default; scenario conntrack.timeouts.udpStream (net.netfilter.nf_conntrack_udp_timeout_stream)',
  ),
  R(
    '4787-REQ-6',
    'MUST',
    'outbound packets refresh the mapping',
    'every packet of the flow refreshes the entry (nf_ct_refresh_acct in nf_conntrack_udp_packet)',
  ),
  R('4787-REQ-6a', 'MAY', 'inbound packets refresh the mapping', ''),
  R(
    '4787-REQ-8',
    'RECOMMENDED',
    'filtering endpoint-independent (transparency) or address-dependent (security)',
    "conntrack lets in only packets matching an entry's reply tuple exactly (address and port of the remote end): address-and-port-dependent filtering; anything else is a new connection to the NAT instance itself",
  ),
  R(
    '4787-REQ-9',
    'MUST',
    'hairpinning',
    'the IGW sends a packet for the Elastic IP back to the NAT instance, where it is a new connection addressed to the instance itself (no entry has that source in its reply tuple): delivered locally unless a DNAT rule forwards it',
  ),
  R('4787-REQ-9a', 'MUST', 'hairpinned packets carry the external source address and port', ''),
  R(
    '4787-REQ-12',
    'MUST',
    'an ICMP destination unreachable does not destroy the mapping',
    'ICMP errors are RELATED and never change or refresh the entry (nf_conntrack_icmpv4_error)',
  ),
  R('4787-REQ-13', 'MUST', 'fragmenting outbound packets (DF=0) / frag-needed back (DF=1)', ''),
  R(
    '4787-REQ-14',
    'MUST',
    'out-of-order fragments are translated',
    'nf_defrag_ipv4 reassembles before conntrack (ipv4_conntrack_defrag)',
  ),
  // RFC 5382: TCP
  R(
    '5382-REQ-1',
    'MUST',
    'endpoint-independent mapping (TCP)',
    'as 4787 REQ-1: the port is per connection, kept only by port preservation or find_appropriate_src; --random / --random-fully skip both',
  ),
  R('5382-REQ-2', 'MUST', 'TCP simultaneous open', 'tcp_conntracks: REPLY SYN in SYN_SENT -> SYN_SENT2'),
  R(
    '5382-REQ-3',
    'RECOMMENDED',
    'TCP filtering endpoint-independent or address-dependent',
    'a SYN from any other remote endpoint is a new connection to the NAT instance itself (address-and-port-dependent filtering)',
  ),
  R(
    '5382-REQ-4',
    'MUST NOT',
    'respond to an unsolicited inbound SYN for 6 s',
    "the SYN is delivered to the NAT instance's own TCP stack, which answers at once (tcp_v4_send_reset for a closed port); only a filter INPUT rule (DROP), which a scenario cannot express, holds it silently",
  ),
  R(
    '5382-REQ-5',
    'MUST',
    'established idle timeout >= 2 h 4 min (when the NAT abandons idle sessions)',
    'nf_conntrack_tcp_timeout_established; scenario conntrack.timeouts.tcpEstablished',
  ),
  R(
    '5382-REQ-7',
    'MUST NOT',
    'port overloading (TCP)',
    'nf_nat_used_tuple() makes get_unique_tuple search another port',
  ),
  R(
    '5382-REQ-8',
    'MUST',
    'hairpinning (TCP)',
    'as 4787 REQ-9: the hairpinned SYN reaches the NAT instance as a new connection addressed to itself',
  ),
  R(
    '5382-REQ-10',
    'MUST',
    'an ICMP error does not terminate the TCP mapping',
    'ICMP errors are RELATED and never change the entry (nf_conntrack_icmpv4_error)',
  ),
  R(
    '7857-2.1',
    'RECOMMENDED',
    'transitory idle timeout default >= 4 min (updates RFC 5382 REQ-5)',
    'tcp_timeouts[]: syn_sent 120 s, syn_recv 60 s, fin_wait 120 s, close_wait 60 s, last_ack 30 s, time_wait 120 s (nf_conntrack_proto_tcp.c); scenario conntrack.timeouts.tcpSynSent, tcpSynRecv, tcpFinWait, tcpCloseWait, tcpLastAck, tcpTimeWait',
  ),
  // RFC 5508: ICMP
  R('5508-REQ-1', 'MUST', 'ICMP query from inside and its reply pass', ''),
  R(
    '5508-REQ-2',
    'MUST',
    'ICMP query mapping timer >= 60 s',
    'nf_conntrack_icmp_timeout is 30 s (nf_conntrack_proto_icmp.c); scenario conntrack.timeouts.icmp (net.netfilter.nf_conntrack_icmp_timeout)',
  ),
  R('5508-REQ-4', 'MUST', 'ICMP error from outside: embedded packet translated', ''),
  R('5508-REQ-5', 'MUST', 'ICMP error from inside: embedded packet translated', ''),
  R(
    '5508-REQ-7',
    'MUST',
    'hairpinned ICMP error messages',
    'no hairpinning (see 4787 REQ-9): an error quoting a hairpinned flow matches no entry and is INVALID',
  ),
  // RFC 7857: updates
  R(
    '7857-2.2',
    'SHOULD',
    'TCP state kept 4 min after an RST',
    'an RST moves the entry to CLOSE with nf_conntrack_tcp_timeout_close (10 s); scenario conntrack.timeouts.tcpClose',
  ),
  R(
    '7857-3',
    'MAY',
    'port overlapping (same external port for different internal endpoints to different destinations)',
    '',
  ),
  R(
    '7857-7.1',
    'SHOULD NOT',
    'an outbound RST or ICMP error refreshes the mapping',
    'an RST sets the CLOSE timeout; ICMP errors are RELATED and never refresh',
  ),
];

export function requirement(id: string): Requirement {
  const r = REQUIREMENTS.find((x) => x.id === id);
  if (!r) throw new Error(`unknown requirement ${id}`);
  return r;
}
