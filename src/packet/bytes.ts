// Big-endian (network order) reads and writes on byte arrays, for code that works on packet bytes
// in place (the core's slow path). Plain functions over Uint8Array: no DataView, no allocation.

export function rd16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

export function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

export function rd32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

export function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
