// Strict IPv4 address / CIDR text helpers for the scenario loader. They return null (or a
// reason string) instead of throwing so the loader can name the file and path in its errors.
// Cold path only.

import type { Cidr } from '../spec/scenario.ts';

const OCTET = /^(0|[1-9]\d{0,2})$/;

/** '10.0.0.1' → 0x0a000001, or null if it is not a dotted quad (no leading zeros, no hostnames). */
export function readIpv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n >>> 0;
}

export function formatIp(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

export function cidrLast(c: Cidr): number {
  return (c.addr | ~maskOf(c.len)) >>> 0;
}

export function cidrHas(c: Cidr, addr: number): boolean {
  return ((addr & maskOf(c.len)) >>> 0) === c.addr;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const len = Math.min(a.len, b.len);
  const m = maskOf(len);
  return ((a.addr & m) >>> 0) === ((b.addr & m) >>> 0);
}

/** a fully inside b */
export function cidrWithin(a: Cidr, b: Cidr): boolean {
  return a.len >= b.len && cidrHas(b, a.addr);
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.addr)}/${c.len}`;
}

export interface CidrText {
  cidr: Cidr;
  /** The address as written, before masking (to detect host bits). */
  written: number;
  /** True when no '/len' was given. */
  bare: boolean;
}

/**
 * Parses 'a.b.c.d/len', 'a.b.c.d/m.m.m.m' (contiguous masks, as iptables accepts) or a bare
 * address (/32). Returns a reason string on failure.
 */
export function readCidr(text: string, allowDottedMask = false): CidrText | string {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const addr = readIpv4(addrText);
  if (addr === null) return `'${addrText}' is not an IPv4 address (dotted quad expected)`;
  if (slash < 0) return { cidr: { addr, len: 32 }, written: addr, bare: true };
  const lenText = text.slice(slash + 1);
  let len: number;
  if (/^(0|[1-9]\d?)$/.test(lenText)) {
    len = Number(lenText);
    if (len > 32) return `prefix length /${lenText} is larger than 32`;
  } else if (allowDottedMask && readIpv4(lenText) !== null) {
    const m = readIpv4(lenText)!;
    len = 0;
    while (len < 32 && ((m << len) & 0x80000000) !== 0) len++;
    if (maskOf(len) !== m) return `netmask ${lenText} is not contiguous`;
  } else {
    return `'/${lenText}' is not a prefix length 0..32`;
  }
  return { cidr: { addr: (addr & maskOf(len)) >>> 0, len }, written: addr, bare: false };
}

/** Why an address cannot be a host's unicast address, or null if it can. */
export function nonUnicastReason(addr: number): string | null {
  const a = addr >>> 24;
  if (a === 0) return 'is in 0.0.0.0/8 ("this network")';
  if (a === 127) return 'is a loopback address';
  if (a >= 224 && a < 240) return 'is a multicast address';
  if (a >= 240) return addr === 0xffffffff ? 'is the limited broadcast address' : 'is in the reserved 240.0.0.0/4';
  return null;
}
