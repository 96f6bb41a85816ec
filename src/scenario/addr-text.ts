// Strict IPv4 address / CIDR text readers for the scenario loader. They return null (or a
// reason string) instead of throwing so the loader can name the file and path in its errors.
// Formatting and CIDR arithmetic come from src/packet/addr.ts.
// Cold path only.

import type { Cidr } from '../spec/scenario.ts';
import { cidrContains, cidrMask } from '../packet/addr.ts';

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

/** a fully inside b */
export function cidrWithin(a: Cidr, b: Cidr): boolean {
  return a.len >= b.len && cidrContains(b, a.addr);
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
    if (cidrMask(len) !== m) return `netmask ${lenText} is not contiguous`;
  } else {
    return `'/${lenText}' is not a prefix length 0..32`;
  }
  return { cidr: { addr: (addr & cidrMask(len)) >>> 0, len }, written: addr, bare: false };
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
