// Big-endian (network order) reads and writes of 16- and 32-bit fields in a byte array: the one
// copy every layer uses (parsers, NAT rewrites, re-addressing, comparisons). Monomorphic, no
// allocation; reads of 32-bit fields return unsigned values.

/** Unsigned 16-bit field at b[o], b[o + 1]. */
export function rd16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

/** Unsigned 32-bit field at b[o .. o + 3]. */
export function rd32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

export function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

export function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
