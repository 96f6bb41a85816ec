// Reading TCP options of a parsed IPv4 TCP packet (descriptions, comparisons; not the hot path).

import { PROTO_TCP, TCP_MIN_HDR_LEN } from './constants.ts';
import { PARSE_OK, PacketView, parseIpv4 } from './parse.ts';

export const TCPOPT_EOL = 0;
export const TCPOPT_NOP = 1;
export const TCPOPT_MSS = 2;
export const TCPOLEN_MSS = 4;

/** The options of the TCP header at l4Off (header length hdrLen) as [kind, bytes] pairs, until EOL or a malformed length. */
export function tcpOptions(b: Uint8Array, l4Off: number, hdrLen: number): Array<{ kind: number; data: Uint8Array }> {
  const out: Array<{ kind: number; data: Uint8Array }> = [];
  let i = l4Off + TCP_MIN_HDR_LEN;
  const end = Math.min(b.length, l4Off + hdrLen);
  while (i < end) {
    const kind = b[i];
    if (kind === TCPOPT_EOL) break;
    if (kind === TCPOPT_NOP) {
      out.push({ kind, data: new Uint8Array(0) });
      i++;
      continue;
    }
    if (i + 1 >= end) break;
    const len = b[i + 1];
    if (len < 2 || i + len > end) break;
    out.push({ kind, data: b.slice(i + 2, i + len) });
    i += len;
  }
  return out;
}

/** The MSS option's value of an IPv4 TCP packet, or null (not TCP, not parseable, no MSS option). */
export function tcpMss(frame: Uint8Array): number | null {
  const pv = new PacketView();
  if (parseIpv4(frame, 0, frame.length, pv) !== PARSE_OK || pv.proto !== PROTO_TCP) return null;
  for (const o of tcpOptions(frame, pv.l4Off, pv.tcpDataOff))
    if (o.kind === TCPOPT_MSS && o.data.length === 2) return (o.data[0] << 8) | o.data[1];
  return null;
}
