// Field by field: how a predicted frame differs from the real box's frame (names a network
// engineer reads: ip.ttl, tcp.sport, tcp.mss, ...), and the content signatures frames of one flow
// are paired by (what NAT never changes: TCP seq/ack/flags and payload, UDP payload, ICMP
// type/code/sequence). Cold path.

import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../packet/constants.ts';
import { PARSE_OK, PacketView, parseIpv4 } from '../../packet/parse.ts';
import { formatIpv4 } from '../../packet/addr.ts';
import { rd16, rd32 } from '../../packet/bytes.ts';
import { TCPOPT_MSS, tcpOptions } from '../../packet/tcp-options.ts';

export interface FieldDiff {
  /** ip.ttl, ip.id, ip.length, ip.checksum, tcp.sport, tcp.mss, tcp.options, udp.checksum, ... */
  field: string;
  predicted: string;
  real: string;
  /** A consequence of another listed difference (a checksum, a length). */
  derived: boolean;
}

function view(f: Uint8Array): PacketView | null {
  const pv = new PacketView();
  const st = parseIpv4(f, 0, f.length, pv);
  return st === PARSE_OK ? pv : null;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** FNV-1a of a byte range, as text (signatures only). */
function hash(b: Uint8Array, from: number, to: number): string {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ b[i], 0x01000193) >>> 0;
  return h.toString(16);
}

/**
 * Content signatures of a frame: strong (what the box must pass unchanged) and weak (enough to pair
 * a frame the box did change: TCP seq and flags, UDP length, ICMP type/code).
 */
export function signatures(f: Uint8Array): { strong: string; weak: string } {
  const pv = view(f);
  if (!pv) return { strong: `raw|${f.length}|${hash(f, 0, f.length)}`, weak: `raw|${f.length}` };
  const end = pv.l4Off + pv.l4Len;
  switch (pv.proto) {
    case PROTO_TCP: {
      const pay = pv.l4Off + pv.tcpDataOff;
      return {
        strong: `tcp|${pv.tcpSeq}|${pv.tcpAck}|${pv.tcpFlags}|${end - pay}|${hash(f, pay, end)}`,
        weak: `tcp|${pv.tcpSeq}|${pv.tcpFlags}`,
      };
    }
    case PROTO_UDP:
      return { strong: `udp|${pv.l4Len}|${hash(f, pv.l4Off + 8, end)}`, weak: `udp|${pv.l4Len}` };
    case PROTO_ICMP:
      if (pv.isIcmpError)
        return {
          strong: `icmperr|${pv.icmpType}|${pv.icmpCode}|${pv.innerProto}|${formatIpv4(pv.innerDst)}|${pv.innerDport}`,
          weak: `icmperr|${pv.icmpType}|${pv.icmpCode}`,
        };
      return {
        strong: `icmp|${pv.icmpType}|${pv.icmpCode}|${pv.icmpSeq}|${hash(f, pv.l4Off + 8, end)}`,
        weak: `icmp|${pv.icmpType}|${pv.icmpCode}`,
      };
    default:
      return { strong: `p${pv.proto}|${pv.l4Len}|${hash(f, pv.l4Off, end)}`, weak: `p${pv.proto}|${pv.l4Len}` };
  }
}

function mssText(f: Uint8Array, pv: PacketView): string {
  for (const o of tcpOptions(f, pv.l4Off, pv.tcpDataOff))
    if (o.kind === TCPOPT_MSS && o.data.length === 2) return String((o.data[0] << 8) | o.data[1]);
  return 'none';
}

function otherOptions(f: Uint8Array, pv: PacketView): string {
  const o = tcpOptions(f, pv.l4Off, pv.tcpDataOff).filter((x) => x.kind !== TCPOPT_MSS);
  return o.map((x) => (x.data.length ? `${x.kind}:${hex(x.data)}` : String(x.kind))).join(',') || 'none';
}

const FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'];
function flagsText(f: number): string {
  return FLAG_NAMES.filter((_, i) => f & (1 << i)).join(',') || 'none';
}

/** The fields in which `real` differs from `predicted` (both IPv4 frames); [] when byte-identical. */
export function fieldDiffs(predicted: Uint8Array, real: Uint8Array): FieldDiff[] {
  const out: FieldDiff[] = [];
  const a = view(predicted);
  const b = view(real);
  if (!a || !b) {
    if (Buffer.compare(Buffer.from(predicted), Buffer.from(real)) !== 0)
      out.push({
        field: 'bytes',
        predicted: `${predicted.length} bytes`,
        real: `${real.length} bytes`,
        derived: false,
      });
    return out;
  }
  const add = (field: string, p: string | number, r: string | number): void => {
    if (String(p) !== String(r)) out.push({ field, predicted: String(p), real: String(r), derived: false });
  };
  add('ip.tos', a.tos, b.tos);
  add('ip.length', a.totalLen, b.totalLen);
  add('ip.id', a.ipId, b.ipId);
  add('ip.df', a.df, b.df);
  add('ip.ttl', a.ttl, b.ttl);
  add('ip.proto', a.proto, b.proto);
  add('ip.src', formatIpv4(a.src), formatIpv4(b.src));
  add('ip.dst', formatIpv4(a.dst), formatIpv4(b.dst));
  add('ip.options', hex(predicted.subarray(20, a.ihl)) || 'none', hex(real.subarray(20, b.ihl)) || 'none');
  add('ip.checksum', a.ipCsum, b.ipCsum);
  if (a.proto === b.proto) {
    const payA = (pv: PacketView, f: Uint8Array, hdr: number): string =>
      `${hash(f, pv.l4Off + hdr, pv.l4Off + pv.l4Len)}/${pv.l4Len - hdr}`;
    if (a.proto === PROTO_TCP) {
      add('tcp.sport', a.sport, b.sport);
      add('tcp.dport', a.dport, b.dport);
      add('tcp.seq', a.tcpSeq, b.tcpSeq);
      add('tcp.ack', a.tcpAck, b.tcpAck);
      add('tcp.flags', flagsText(a.tcpFlags), flagsText(b.tcpFlags));
      add('tcp.window', a.tcpWindow, b.tcpWindow);
      add('tcp.mss', mssText(predicted, a), mssText(real, b));
      add('tcp.options', otherOptions(predicted, a), otherOptions(real, b));
      add('tcp.hdrlen', a.tcpDataOff, b.tcpDataOff);
      add('tcp.urgent', rd16(predicted, a.l4Off + 18), rd16(real, b.l4Off + 18));
      add('payload', payA(a, predicted, a.tcpDataOff), payA(b, real, b.tcpDataOff));
      add('tcp.checksum', a.l4Csum, b.l4Csum);
    } else if (a.proto === PROTO_UDP) {
      add('udp.sport', a.sport, b.sport);
      add('udp.dport', a.dport, b.dport);
      add('udp.length', a.udpLen, b.udpLen);
      add('payload', payA(a, predicted, 8), payA(b, real, 8));
      add('udp.checksum', a.l4Csum, b.l4Csum);
    } else if (a.proto === PROTO_ICMP) {
      add('icmp.type', a.icmpType, b.icmpType);
      add('icmp.code', a.icmpCode, b.icmpCode);
      if (a.isIcmpError) add('icmp.quoted', hex(predicted.subarray(a.l4Off + 4)), hex(real.subarray(b.l4Off + 4)));
      else {
        add('icmp.id', a.icmpId, b.icmpId);
        add('icmp.seq', a.icmpSeq, b.icmpSeq);
        add('payload', payA(a, predicted, 8), payA(b, real, 8));
      }
      add('icmp.checksum', a.l4Csum, b.l4Csum);
    } else add('payload', hex(predicted.subarray(a.l4Off)), hex(real.subarray(b.l4Off)));
  }
  if (out.length === 0 && predicted.length !== real.length) add('frame.length', predicted.length, real.length); // trailing bytes beyond the IP length
  if (out.length === 0 && rd32(predicted, 0) !== rd32(real, 0))
    add('ip.header', hex(predicted.subarray(0, 4)), hex(real.subarray(0, 4)));
  // Checksums follow from any other change; lengths from an added or removed option.
  const primary = out.filter(
    (d) => !d.field.endsWith('checksum') && d.field !== 'ip.length' && d.field !== 'tcp.hdrlen',
  );
  const optionChange = out.some((d) => d.field === 'tcp.mss' || d.field === 'tcp.options');
  for (const d of out) {
    if (d.field.endsWith('checksum') && primary.length > 0) d.derived = true;
    if ((d.field === 'ip.length' || d.field === 'tcp.hdrlen') && optionChange) d.derived = true;
  }
  return out;
}
