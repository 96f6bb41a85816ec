// The TCP reset a middlebox sends in answer to a segment it will not pass (RFC 9293 §3.10.7.1,
// "reset generation"): from the segment's destination to its source; with the segment's ACK
// number as sequence number if it carried an ACK, else sequence 0 and RST+ACK acknowledging
// everything it occupied (data, SYN, FIN). Used for a NAT gateway's answer to a packet of a
// connection it no longer knows (docs/semantics.md "NAT gateway"). Writes in place, no allocation.

import { wr16, wr32 } from './bytes.ts';
import { fold16, sum16 } from './checksum.ts';
import { F_ACK, F_FIN, F_RST, F_SYN, PROTO_TCP } from './constants.ts';

/** Length of the reset (IPv4 header + TCP header, no options). */
export const TCP_RESET_LEN = 40;

/**
 * Writes the reset answering a segment (src:sport → dst:dport, seq, ack, flags, payload length)
 * at buf[off .. off + 40). `ttl` is the IP TTL of the generated packet.
 */
export function writeTcpReset(
  buf: Uint8Array,
  off: number,
  src: number,
  dst: number,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  payloadLen: number,
  ttl: number,
): void {
  buf[off] = 0x45;
  buf[off + 1] = 0;
  wr16(buf, off + 2, TCP_RESET_LEN);
  wr16(buf, off + 4, 0);
  wr16(buf, off + 6, 0);
  buf[off + 8] = ttl;
  buf[off + 9] = PROTO_TCP;
  wr16(buf, off + 10, 0);
  wr32(buf, off + 12, dst);
  wr32(buf, off + 16, src);
  wr16(buf, off + 10, ~fold16(sum16(buf, off, 20)) & 0xffff);
  const t = off + 20;
  wr16(buf, t, dport);
  wr16(buf, t + 2, sport);
  if ((flags & F_ACK) !== 0) {
    wr32(buf, t + 4, ack);
    wr32(buf, t + 8, 0);
    buf[t + 13] = F_RST;
  } else {
    const len = payloadLen + ((flags & F_SYN) !== 0 ? 1 : 0) + ((flags & F_FIN) !== 0 ? 1 : 0);
    wr32(buf, t + 4, 0);
    wr32(buf, t + 8, (seq + len) >>> 0);
    buf[t + 13] = F_RST | F_ACK;
  }
  buf[t + 12] = 5 << 4;
  wr16(buf, t + 14, 0);
  wr16(buf, t + 16, 0);
  wr16(buf, t + 18, 0);
  // Checksum: pseudo-header (src, dst, zero, protocol, TCP length) + the 20-byte header.
  let acc = sum16(buf, off + 12, 8);
  acc += PROTO_TCP + 20;
  acc = sum16(buf, t, 20, acc);
  wr16(buf, t + 16, ~fold16(acc) & 0xffff);
}
