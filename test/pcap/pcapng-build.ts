// Builds pcapng files block by block for tests: either byte order, any if_tsresol, SPB/EPB/PB,
// unknown blocks, several sections, and deliberately broken blocks.

export interface Opt {
  code: number;
  value: Uint8Array;
}

class W {
  private parts: number[] = [];
  constructor(readonly le: boolean) {}
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    const b = [v & 0xff, (v >>> 8) & 0xff];
    this.parts.push(...(this.le ? b : b.reverse()));
    return this;
  }
  u32(v: number): this {
    const b = [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
    this.parts.push(...(this.le ? b : b.reverse()));
    return this;
  }
  bytes(b: Uint8Array): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
  pad4(): this {
    while (this.parts.length % 4) this.parts.push(0);
    return this;
  }
  get length(): number {
    return this.parts.length;
  }
  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function options(le: boolean, opts: Opt[], end = true): Uint8Array {
  if (opts.length === 0) return new Uint8Array(0);
  const w = new W(le);
  for (const o of opts) w.u16(o.code).u16(o.value.length).bytes(o.value).pad4();
  if (end) w.u32(0);
  return w.done();
}

/** A block with correct lengths unless `trailer` / `lenDelta` break them. */
export function block(
  le: boolean,
  type: number,
  body: Uint8Array,
  o: { trailer?: number; lenDelta?: number } = {},
): Uint8Array {
  const len = 12 + body.length + (o.lenDelta ?? 0);
  const w = new W(le)
    .u32(type)
    .u32(len)
    .bytes(body)
    .u32(o.trailer ?? len);
  return w.done();
}

export function shb(
  le: boolean,
  o: { major?: number; minor?: number; opts?: Opt[]; trailer?: number } = {},
): Uint8Array {
  const body = new W(le)
    .u32(0x1a2b3c4d)
    .u16(o.major ?? 1)
    .u16(o.minor ?? 0)
    .u32(0xffffffff)
    .u32(0xffffffff)
    .bytes(options(le, o.opts ?? []))
    .done();
  return block(le, 0x0a0d0d0a, body, { trailer: o.trailer });
}

export function tsresolOpt(v: number): Opt {
  return { code: 9, value: Uint8Array.of(v) };
}

export function tsoffsetOpt(le: boolean, sec: number): Opt {
  const w = new W(le);
  const hi = Math.floor(sec / 2 ** 32);
  const lo = sec >>> 0;
  // 64-bit value in the section's byte order.
  if (le) w.u32(lo).u32(hi);
  else w.u32(hi).u32(lo);
  return { code: 14, value: w.done() };
}

export function nameOpt(name: string): Opt {
  return { code: 2, value: new TextEncoder().encode(name) };
}

export function idb(le: boolean, linkType: number, o: { snapLen?: number; opts?: Opt[] } = {}): Uint8Array {
  const body = new W(le)
    .u16(linkType)
    .u16(0)
    .u32(o.snapLen ?? 0)
    .bytes(options(le, o.opts ?? []))
    .done();
  return block(le, 1, body);
}

/** Enhanced Packet Block; ts is the raw 64-bit timestamp in interface units, as [hi, lo]. */
export function epb(
  le: boolean,
  ifId: number,
  ts: [number, number],
  data: Uint8Array,
  o: { origLen?: number; capLen?: number; opts?: Opt[] } = {},
): Uint8Array {
  const w = new W(le)
    .u32(ifId)
    .u32(ts[0])
    .u32(ts[1])
    .u32(o.capLen ?? data.length)
    .u32(o.origLen ?? data.length)
    .bytes(data)
    .pad4()
    .bytes(options(le, o.opts ?? []));
  return block(le, 6, w.done());
}

/** Obsolete Packet Block (type 2). */
export function pb(
  le: boolean,
  ifId: number,
  ts: [number, number],
  data: Uint8Array,
  origLen = data.length,
): Uint8Array {
  const w = new W(le).u16(ifId).u16(0).u32(ts[0]).u32(ts[1]).u32(data.length).u32(origLen).bytes(data).pad4();
  return block(le, 2, w.done());
}

export function spb(le: boolean, data: Uint8Array, origLen = data.length): Uint8Array {
  return block(le, 3, new W(le).u32(origLen).bytes(data).pad4().done());
}

/** A block natlab does not use (e.g. Name Resolution 4, Interface Statistics 5, custom 0xBAD). */
export function unknownBlock(le: boolean, type: number, size = 8): Uint8Array {
  return block(le, type, new Uint8Array(size).fill(0x5a));
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
