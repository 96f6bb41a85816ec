// Human-readable one-line packet descriptions, tcpdump style (cold path).

import { formatIpv4 } from './addr.ts';
import {
  F_ACK,
  F_CWR,
  F_ECE,
  F_FIN,
  F_PSH,
  F_RST,
  F_SYN,
  F_URG,
  ICMP_DEST_UNREACH,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_PARAMETERPROB,
  ICMP_REDIRECT,
  ICMP_SOURCE_QUENCH,
  ICMP_TIME_EXCEEDED,
  ICMP_TIMESTAMP,
  ICMP_TIMESTAMPREPLY,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
} from './constants.ts';
import { PacketView, parseIpv4, PARSE_OK, PARSE_STATUS_NAMES } from './parse.ts';

/** tcpdump's flag letters: S F R P . U E W */
export function tcpFlagsText(f: number): string {
  let s = '';
  if (f & F_SYN) s += 'S';
  if (f & F_FIN) s += 'F';
  if (f & F_RST) s += 'R';
  if (f & F_PSH) s += 'P';
  if (f & F_URG) s += 'U';
  if (f & F_ECE) s += 'E';
  if (f & F_CWR) s += 'W';
  if (f & F_ACK) s += '.';
  return s || 'none';
}

const UNREACH_CODES = ['net', 'host', 'protocol', 'port', 'frag-needed', 'source-route-failed'];

function icmpName(t: number, c: number): string {
  switch (t) {
    case ICMP_ECHO:
      return 'echo';
    case ICMP_ECHOREPLY:
      return 'echo-reply';
    case ICMP_TIMESTAMP:
      return 'timestamp';
    case ICMP_TIMESTAMPREPLY:
      return 'timestamp-reply';
    case ICMP_DEST_UNREACH:
      return `unreachable ${UNREACH_CODES[c] ?? `code ${c}`}`;
    case ICMP_TIME_EXCEEDED:
      return c === 0 ? 'time-exceeded ttl' : 'time-exceeded reassembly';
    case ICMP_SOURCE_QUENCH:
      return 'source-quench';
    case ICMP_REDIRECT:
      return `redirect code ${c}`;
    case ICMP_PARAMETERPROB:
      return `parameter-problem code ${c}`;
    default:
      return `type ${t} code ${c}`;
  }
}

function endpoint(addr: number, port: number, proto: number): string {
  return proto === PROTO_TCP || proto === PROTO_UDP ? `${formatIpv4(addr)}:${port}` : formatIpv4(addr);
}

/** Describes an IPv4 packet at `off`: `tcp 10.0.1.10:40000 > 198.51.100.7:443 S ttl=64`. */
export function describePacket(buf: Uint8Array, off = 0, len = buf.length - off): string {
  const pv = new PacketView();
  const st = parseIpv4(buf, off, len, pv);
  if (st !== PARSE_OK && pv.ihl === 0) return `malformed (${PARSE_STATUS_NAMES[st]})`;
  const suffix = st === PARSE_OK ? '' : ` [${PARSE_STATUS_NAMES[st]}]`;
  const ttl = ` ttl=${pv.ttl}`;
  switch (pv.proto) {
    case PROTO_TCP:
      return `tcp ${endpoint(pv.src, pv.sport, 6)} > ${endpoint(pv.dst, pv.dport, 6)} ${tcpFlagsText(pv.tcpFlags)}${pv.payloadLen ? ` len=${pv.payloadLen}` : ''}${ttl}${suffix}`;
    case PROTO_UDP:
      return `udp ${endpoint(pv.src, pv.sport, 17)} > ${endpoint(pv.dst, pv.dport, 17)}${pv.payloadLen ? ` len=${pv.payloadLen}` : ''}${ttl}${suffix}`;
    case PROTO_ICMP: {
      let s = `icmp ${formatIpv4(pv.src)} > ${formatIpv4(pv.dst)} ${icmpName(pv.icmpType, pv.icmpCode)}`;
      if (pv.icmpType === ICMP_ECHO || pv.icmpType === ICMP_ECHOREPLY) s += ` id=${pv.icmpId} seq=${pv.icmpSeq}`;
      if (pv.isIcmpError && pv.innerIhl) {
        const p = pv.innerProto;
        const name = p === PROTO_TCP ? 'tcp' : p === PROTO_UDP ? 'udp' : p === PROTO_ICMP ? 'icmp' : `proto-${p}`;
        s += ` [${name} ${endpoint(pv.innerSrc, pv.innerSport, p)} > ${endpoint(pv.innerDst, pv.innerDport, p)}]`;
      }
      return s + ttl + suffix;
    }
    default:
      return `ip-proto-${pv.proto} ${formatIpv4(pv.src)} > ${formatIpv4(pv.dst)}${ttl}${suffix}`;
  }
}
