// Internet checksums: RFC 1071 full computation and RFC 1624 incremental update.
// Hot path: integer arithmetic only, no allocation.
//
// Conventions: a "checksum" is the 16-bit value stored in a header (the ones' complement of the
// ones' complement sum). A "delta" is a folded 16-bit ones' complement sum to be added to the
// un-complemented sum, so applying delta d to checksum c gives ~(~c + d) (RFC 1624 eqn. 3).
// The arithmetic is the kernel's (csum_replace4/inet_proto_csum_replace*), so incremental results
// are bit-identical to what Linux writes, including an already-wrong checksum staying wrong.

import type { PacketView } from './parse.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from './constants.ts';

/** Unfolded ones' complement sum of 16-bit big-endian words, added to acc. */
export function sum16(buf: Uint8Array, off: number, len: number, acc = 0): number {
  let s = acc;
  const end = off + (len & ~1);
  let i = off;
  for (; i < end; i += 2) s += (buf[i] << 8) | buf[i + 1];
  if (len & 1) s += buf[i] << 8;
  // Fold periodically is unnecessary: at most 2^16 words of 2^16 fit in a double exactly, but keep
  // it in int range for large inputs.
  return s;
}

/** Folds an accumulator to 16 bits (end-around carry). */
export function fold16(acc: number): number {
  let s = acc;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** Checksum value (complemented) for a byte range. */
export function checksumOf(buf: Uint8Array, off: number, len: number, acc = 0): number {
  return ~fold16(sum16(buf, off, len, acc)) & 0xffff;
}

export function ipv4HeaderChecksum(buf: Uint8Array, off: number, ihl: number): number {
  // Sum with the checksum field treated as zero.
  const s = sum16(buf, off, ihl) - ((buf[off + 10] << 8) | buf[off + 11]);
  return ~fold16(s + 0xffff) & 0xffff; // + 0xffff keeps s non-negative; 0xffff is ones' complement zero
}

export function verifyIpv4Header(buf: Uint8Array, pv: PacketView): boolean {
  return fold16(sum16(buf, pv.l3Off, pv.ihl)) === 0xffff;
}

function pseudoHeaderSum(pv: PacketView, l4Len: number): number {
  return (pv.src >>> 16) + (pv.src & 0xffff) + (pv.dst >>> 16) + (pv.dst & 0xffff) + pv.proto + l4Len;
}

/** Offset of the L4 checksum field relative to the L4 header, or -1. */
export function l4ChecksumFieldOffset(proto: number): number {
  return proto === PROTO_TCP ? 16 : proto === PROTO_UDP ? 6 : proto === PROTO_ICMP ? 2 : -1;
}

/**
 * The correct L4 checksum for the parsed packet (TCP/UDP with pseudo-header, ICMP without),
 * computed over the L4 bytes as they are, with the checksum field treated as zero. UDP: a computed
 * 0 is returned as 0xFFFF. Returns -1 for other protocols or when the L4 data is not all captured.
 */
export function l4Checksum(buf: Uint8Array, pv: PacketView): number {
  const fo = l4ChecksumFieldOffset(pv.proto);
  if (fo < 0 || pv.l4Off + pv.l4Len > pv.l3Off + pv.capLen) return -1;
  const field = (buf[pv.l4Off + fo] << 8) | buf[pv.l4Off + fo + 1];
  let s = sum16(buf, pv.l4Off, pv.l4Len) - field + 0xffff;
  if (pv.proto !== PROTO_ICMP) s += pseudoHeaderSum(pv, pv.l4Len);
  const c = ~fold16(s) & 0xffff;
  return pv.proto === PROTO_UDP && c === 0 ? 0xffff : c;
}

/** True if the L4 checksum verifies (UDP checksum 0 = none = valid). Uncomputable → false. */
export function verifyL4Checksum(buf: Uint8Array, pv: PacketView): boolean {
  if (pv.proto === PROTO_UDP && pv.l4Csum === 0) return true;
  const fo = l4ChecksumFieldOffset(pv.proto);
  if (fo < 0) return true;
  if (pv.l4Off + pv.l4Len > pv.l3Off + pv.capLen) return false;
  let s = sum16(buf, pv.l4Off, pv.l4Len);
  if (pv.proto !== PROTO_ICMP) s += pseudoHeaderSum(pv, pv.l4Len);
  return fold16(s) === 0xffff;
}

/** Writes correct IP header and L4 checksums into a parsed packet (cold path). */
export function writeChecksums(buf: Uint8Array, pv: PacketView): void {
  const c = ipv4HeaderChecksum(buf, pv.l3Off, pv.ihl);
  buf[pv.l3Off + 10] = c >>> 8;
  buf[pv.l3Off + 11] = c & 0xff;
  const fo = l4ChecksumFieldOffset(pv.proto);
  if (fo < 0 || (pv.proto === PROTO_UDP && pv.l4Csum === 0)) return;
  const l4 = l4Checksum(buf, pv);
  if (l4 < 0) return;
  buf[pv.l4Off + fo] = l4 >>> 8;
  buf[pv.l4Off + fo + 1] = l4 & 0xff;
  pv.l4Csum = l4;
}

// --- RFC 1624 incremental update -----------------------------------------------------------

/** Folded delta for replacing a 16-bit word `old` with `neu`: ~old + neu. */
export function csumDelta16(old: number, neu: number): number {
  const s = (~old & 0xffff) + (neu & 0xffff);
  return (s & 0xffff) + (s >>> 16);
}

/** Folded delta for replacing a 32-bit word (two 16-bit halves). */
export function csumDelta32(old: number, neu: number): number {
  let s = ((~old >>> 16) & 0xffff) + (~old & 0xffff) + (neu >>> 16) + (neu & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  return (s & 0xffff) + (s >>> 16);
}

/** Sum of two folded deltas, folded. */
export function csumAddDeltas(a: number, b: number): number {
  const s = a + b;
  return (s & 0xffff) + (s >>> 16);
}

/** Applies a folded delta to a stored checksum: ~(~csum + delta). */
export function csumApplyDelta(csum: number, delta: number): number {
  let s = (~csum & 0xffff) + delta;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export function csumReplace16(csum: number, old: number, neu: number): number {
  return csumApplyDelta(csum, csumDelta16(old, neu));
}

export function csumReplace32(csum: number, old: number, neu: number): number {
  return csumApplyDelta(csum, csumDelta32(old, neu));
}

/** UDP rules: a zero checksum (none) stays zero; a computed zero is written as 0xFFFF. */
export function udpCsumApplyDelta(csum: number, delta: number): number {
  if (csum === 0) return 0;
  const c = csumApplyDelta(csum, delta);
  return c === 0 ? 0xffff : c;
}

export function udpCsumReplace32(csum: number, old: number, neu: number): number {
  return udpCsumApplyDelta(csum, csumDelta32(old, neu));
}

export function udpCsumReplace16(csum: number, old: number, neu: number): number {
  return udpCsumApplyDelta(csum, csumDelta16(old, neu));
}
