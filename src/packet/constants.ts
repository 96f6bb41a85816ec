// Wire-format constants (IANA / IEEE / tcpdump.org link types). Plain consts: no TS enums.

export const ETH_HDR_LEN = 14;
export const VLAN_TAG_LEN = 4;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_IPV6 = 0x86dd;

export const IPV4_MIN_HDR_LEN = 20;
export const TCP_MIN_HDR_LEN = 20;
export const UDP_HDR_LEN = 8;
export const ICMP_HDR_LEN = 8;

export const PROTO_ICMP = 1;
export const PROTO_IPIP = 4;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

export const F_FIN = 0x01;
export const F_SYN = 0x02;
export const F_RST = 0x04;
export const F_PSH = 0x08;
export const F_ACK = 0x10;
export const F_URG = 0x20;
export const F_ECE = 0x40;
export const F_CWR = 0x80;

export const ICMP_ECHOREPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_SOURCE_QUENCH = 4;
export const ICMP_REDIRECT = 5;
export const ICMP_ECHO = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETERPROB = 12;
export const ICMP_TIMESTAMP = 13;
export const ICMP_TIMESTAMPREPLY = 14;
export const ICMP_INFO_REQUEST = 15;
export const ICMP_INFO_REPLY = 16;
export const ICMP_ADDRESS = 17;
export const ICMP_ADDRESSREPLY = 18;

/** ICMP_DEST_UNREACH codes. */
export const ICMP_NET_UNREACH = 0;
export const ICMP_HOST_UNREACH = 1;
export const ICMP_PROT_UNREACH = 2;
export const ICMP_PORT_UNREACH = 3;
export const ICMP_FRAG_NEEDED = 4;
/** ICMP_TIME_EXCEEDED codes. */
export const ICMP_EXC_TTL = 0;
export const ICMP_EXC_FRAGTIME = 1;

/**
 * True when an IPv4 frame carries an ICMP error header: protocol ICMP, not a later fragment (whose
 * payload continues the datagram: its first byte is data, not a type), an error type. Cheap; no
 * further validation. Shared by every place that tells engine-generated errors from forwarded ones.
 */
export function isIcmpErrorFrame(b: Uint8Array): boolean {
  const ihl = (b[0] & 15) << 2;
  return (
    b.length > ihl &&
    b.length >= 20 &&
    b[9] === PROTO_ICMP &&
    (((b[6] << 8) | b[7]) & 0x1fff) === 0 &&
    isIcmpErrorType(b[ihl])
  );
}

/** True for ICMP error types (RFC 792; Linux icmp_is_err). */
export function isIcmpErrorType(t: number): boolean {
  return (
    t === ICMP_DEST_UNREACH ||
    t === ICMP_SOURCE_QUENCH ||
    t === ICMP_REDIRECT ||
    t === ICMP_TIME_EXCEEDED ||
    t === ICMP_PARAMETERPROB
  );
}

/** True for ICMP query types that carry an identifier (echo, timestamp, info, address mask). */
export function isIcmpQueryType(t: number): boolean {
  return t === ICMP_ECHO || t === ICMP_ECHOREPLY || (t >= ICMP_TIMESTAMP && t <= ICMP_ADDRESSREPLY);
}

// Link-layer header types (https://www.tcpdump.org/linktypes.html).
export const LINKTYPE_NULL = 0; // BSD loopback: 4-byte host-order address family
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101; // raw IPv4/IPv6, version from first nibble
export const LINKTYPE_LINUX_SLL = 113; // Linux cooked capture v1 (16-byte header)
export const LINKTYPE_IPV4 = 228; // raw IPv4 only
export const LINKTYPE_LINUX_SLL2 = 276; // Linux cooked capture v2 (20-byte header)
export const LINKTYPE_RAW_OPENBSD = 14; // DLT_RAW on OpenBSD; LINKTYPE 14 in files
export const LINKTYPE_RAW_BSD = 12; // DLT_RAW on most BSDs

const LINKTYPE_NAMES: Record<number, string> = {
  0: 'NULL',
  1: 'EN10MB',
  3: 'AX25',
  6: 'IEEE802_5',
  8: 'SLIP',
  9: 'PPP',
  10: 'FDDI',
  12: 'RAW',
  14: 'RAW',
  50: 'PPP_HDLC',
  51: 'PPP_ETHER',
  101: 'RAW',
  104: 'C_HDLC',
  105: 'IEEE802_11',
  107: 'FRELAY',
  108: 'LOOP',
  113: 'LINUX_SLL',
  119: 'PRISM_HEADER',
  127: 'IEEE802_11_RADIOTAP',
  143: 'DOCSIS',
  147: 'USER0',
  192: 'PPI',
  195: 'IEEE802_15_4',
  201: 'ERF',
  220: 'USB_LINUX_MMAPPED',
  228: 'IPV4',
  229: 'IPV6',
  249: 'NETLINK',
  264: 'NFLOG',
  276: 'LINUX_SLL2',
  297: 'ETW',
};

export function linkTypeName(n: number): string {
  return LINKTYPE_NAMES[n] ?? `LINKTYPE_${n}`;
}

/** Link types natlab reads frames from. */
export function isSupportedLinkType(n: number): boolean {
  return (
    n === LINKTYPE_ETHERNET ||
    n === LINKTYPE_RAW ||
    n === LINKTYPE_IPV4 ||
    n === LINKTYPE_LINUX_SLL ||
    n === LINKTYPE_LINUX_SLL2 ||
    n === LINKTYPE_NULL ||
    n === LINKTYPE_RAW_BSD ||
    n === LINKTYPE_RAW_OPENBSD
  );
}
