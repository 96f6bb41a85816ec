// Linux defaults (Documentation/networking/nf_conntrack-sysctl.rst; tracker sources), seconds.
// See ../shared/reference/linux-nat-semantics.md §3.

export interface ConntrackTimeouts {
  tcpSynSent: number;
  tcpSynRecv: number;
  tcpEstablished: number;
  tcpFinWait: number;
  tcpCloseWait: number;
  tcpLastAck: number;
  tcpTimeWait: number;
  tcpClose: number;
  tcpMaxRetrans: number;
  tcpUnacknowledged: number;
  udp: number;
  udpStream: number;
  icmp: number;
  generic: number;
}

export const DEFAULT_TIMEOUTS: Readonly<ConntrackTimeouts> = Object.freeze({
  tcpSynSent: 120,
  tcpSynRecv: 60,
  tcpEstablished: 432000,
  tcpFinWait: 120,
  tcpCloseWait: 60,
  tcpLastAck: 30,
  tcpTimeWait: 120,
  tcpClose: 10,
  tcpMaxRetrans: 300,
  tcpUnacknowledged: 300,
  udp: 30,
  udpStream: 120,
  icmp: 30,
  generic: 600,
});

/** The sysctl names under /proc/sys/net/netfilter/ for each timeout (kernel oracle, docs). */
export const TIMEOUT_SYSCTLS: Readonly<Record<keyof ConntrackTimeouts, string>> = Object.freeze({
  tcpSynSent: 'nf_conntrack_tcp_timeout_syn_sent',
  tcpSynRecv: 'nf_conntrack_tcp_timeout_syn_recv',
  tcpEstablished: 'nf_conntrack_tcp_timeout_established',
  tcpFinWait: 'nf_conntrack_tcp_timeout_fin_wait',
  tcpCloseWait: 'nf_conntrack_tcp_timeout_close_wait',
  tcpLastAck: 'nf_conntrack_tcp_timeout_last_ack',
  tcpTimeWait: 'nf_conntrack_tcp_timeout_time_wait',
  tcpClose: 'nf_conntrack_tcp_timeout_close',
  tcpMaxRetrans: 'nf_conntrack_tcp_timeout_max_retrans',
  tcpUnacknowledged: 'nf_conntrack_tcp_timeout_unacknowledged',
  udp: 'nf_conntrack_udp_timeout',
  udpStream: 'nf_conntrack_udp_timeout_stream',
  icmp: 'nf_conntrack_icmp_timeout',
  generic: 'nf_conntrack_generic_timeout',
});

/** Linux default nf_conntrack_max on a 64-bit machine with more than 4 GiB of RAM. */
export const DEFAULT_CONNTRACK_MAX = 262144;

/** UDP: a flow becomes a "stream" (120 s, ASSURED) if a packet arrives > 2 s after the first. */
export const UDP_STREAM_AFTER_S = 2;

/** Linux MASQUERADE/SNAT source-port search ranges when no --to-ports is given (nf_nat_core.c). */
export const PORT_RANGE_LOW_MIN = 1; // ports 1..511 stay in 1..511
export const PORT_RANGE_LOW_MAX = 511;
export const PORT_RANGE_MID_MIN = 600; // ports 512..1023 map into 600..1023
export const PORT_RANGE_MID_MAX = 1023;
export const PORT_RANGE_HIGH_MIN = 1024; // ports >= 1024 map into 1024..65535
export const PORT_RANGE_HIGH_MAX = 65535;

/**
 * Clock resolution shared by all engines: timeouts are compared in whole milliseconds.
 * nowMs = Math.floor(timeUs / 1000); an entry refreshed at refreshMs with timeout T seconds has
 * expiryMs = refreshMs + T * 1000 and is dead iff nowMs >= expiryMs (the kernel's
 * nf_ct_is_expired: timeout - now <= 0). `conntrack -L` shows Math.floor((expiryMs - nowMs) / 1000).
 */
export const CLOCK_TICK_US = 1000;

/** Linux ip_default_ttl: TTL of packets the NAT instance itself generates (ICMP errors). */
export const DEFAULT_IP_TTL = 64;

/** icmp_send quotes as much of the offending packet as fits in a 576-byte error (RFC 1812). */
export const ICMP_ERROR_MAX_LEN = 576;
