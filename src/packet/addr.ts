// IPv4 address and CIDR text <-> uint32 (cold path).

export interface Cidr {
  addr: number;
  len: number;
}

export function cidrMask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** Parses dotted-quad text; throws Error('invalid IPv4 address ...') on anything else. */
export function parseIpv4Addr(text: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text.trim());
  if (!m) throw new Error(`invalid IPv4 address '${text}'`);
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255 || (m[i].length > 1 && m[i][0] === '0')) throw new Error(`invalid IPv4 address '${text}'`);
    n = n * 256 + o;
  }
  return n >>> 0;
}

export function formatIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Parses 'a.b.c.d/len' (or a bare address = /32). Throws if host bits are set. */
export function parseCidr(text: string): Cidr {
  const t = text.trim();
  const slash = t.indexOf('/');
  const addr = parseIpv4Addr(slash < 0 ? t : t.slice(0, slash));
  let len = 32;
  if (slash >= 0) {
    const l = t.slice(slash + 1);
    if (!/^\d{1,2}$/.test(l) || Number(l) > 32) throw new Error(`invalid prefix length in '${text}'`);
    len = Number(l);
  }
  if ((addr & ~cidrMask(len)) >>> 0 !== 0) {
    throw new Error(`'${text}' has host bits set (network is ${formatIpv4((addr & cidrMask(len)) >>> 0)}/${len})`);
  }
  return { addr, len };
}

export function formatCidr(c: Cidr): string {
  return `${formatIpv4(c.addr)}/${c.len}`;
}

export function cidrContains(c: Cidr, addr: number): boolean {
  return (addr & cidrMask(c.len)) >>> 0 === c.addr;
}

/** True if the two CIDRs share any address. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  const len = Math.min(a.len, b.len);
  const m = cidrMask(len);
  return (a.addr & m) >>> 0 === (b.addr & m) >>> 0;
}

/** Last address of a CIDR (broadcast). */
export function cidrLast(c: Cidr): number {
  return (c.addr | ~cidrMask(c.len)) >>> 0;
}

/**
 * A multicast (224.0.0.0/4) or limited broadcast (255.255.255.255) address: the VPC router
 * carries neither (docs/semantics.md §2 step 3). Works on signed or unsigned 32-bit values.
 */
export function isMulticastOrBroadcast(a: number): boolean {
  return a >>> 28 === 0xe || (a | 0) === -1;
}
