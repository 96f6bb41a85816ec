// A scenario built around an arbitrary capture (`natlab replay --inside CIDR`): the inside hosts
// live in private subnets behind a configure-pat NAT instance, the outside hosts are internet
// hosts. The construction is documented in docs/scenarios.md ("Capture scenarios"). Cold path.

import { InputError } from '../spec/errors.ts';
import type { Cidr, Scenario } from '../spec/scenario.ts';
import { cidrContains, cidrLast, cidrMask, cidrOverlaps, formatCidr, formatIpv4 } from '../packet/addr.ts';
import { cidrWithin, nonUnicastReason } from './addr-text.ts';
import { compileScenarioObject } from './load.ts';

export interface CaptureScenarioOptions {
  /** The inside (private) networks, e.g. from --inside. */
  inside: Cidr[];
  /** Inside host addresses seen in the capture; each must be in an inside CIDR. */
  insideHosts: number[];
  /** Outside host addresses seen in the capture (become internet hosts). */
  outsideHosts: number[];
  /** Scenario name (default 'capture'). */
  name?: string;
  /**
   * Private subnets may be widened down to this prefix length to move a host off an address AWS
   * reserves (default CAPTURE_SUBNET_LEN_MIN; `replay --subnet-len-min`). 10.0.0.1 is +1 of every
   * aligned block up to 10.0.0.0/7 and an ordinary host only in 8.0.0.0/6.
   */
  subnetLenMin?: number;
  /**
   * The NAT instance's Elastic IP (`natlab verify`: the real box's outside address, so predicted
   * frames leave with it). Default: a free documentation address (DOC_NETS).
   */
  elasticIp?: number;
}

export const CAPTURE_SOURCE = '<capture>';
export const CAPTURE_NAT_NAME = 'nat';
/** The VPC is at least this big (a /24 around the inside hosts). */
export const CAPTURE_VPC_LEN_MAX = 24;
/** Private subnets are never widened beyond this while dodging AWS-reserved addresses. */
export const CAPTURE_SUBNET_LEN_MIN = 16;
/** The smallest VPC natlab will build (the loader's bound is /1; keep captures sane). */
export const CAPTURE_VPC_LEN_MIN = 8;
/** Documentation ranges (RFC 5737) an Elastic IP is taken from, in order. */
export const DOC_NETS: readonly Cidr[] = [
  { addr: 0xcb007100, len: 24 }, // 203.0.113.0/24
  { addr: 0xc6336400, len: 24 }, // 198.51.100.0/24
  { addr: 0xc0000200, len: 24 }, // 192.0.2.0/24
];
/** Host offset used for the NAT instance inside the public subnet (.10, as in the built-in). */
export const CAPTURE_NAT_OFFSET = 10;

function norm(c: Cidr): Cidr {
  return { addr: (c.addr & cidrMask(c.len)) >>> 0, len: c.len };
}

function widen(c: Cidr): Cidr {
  return norm({ addr: c.addr, len: c.len - 1 });
}

/** Sort, and drop CIDRs contained in others; overlapping CIDRs always nest, so this leaves disjoint ones. */
function disjoint(list: Cidr[]): Cidr[] {
  const sorted = [...list].sort((a, b) => a.len - b.len || a.addr - b.addr);
  const out: Cidr[] = [];
  for (const c of sorted) if (!out.some((o) => cidrWithin(c, o))) out.push(c);
  return out.sort((a, b) => a.addr - b.addr);
}

/** Why `ip` cannot be an instance address in `c` (AWS reservations), or null. */
function reservedIn(c: Cidr, ip: number): string | null {
  const off = ip - c.addr;
  if (off === 0) return 'the network address';
  if (ip === cidrLast(c)) return 'the broadcast address';
  if (off <= 3) return `reserved by AWS (+${off}: ${['', 'VPC router', 'DNS', 'future use'][off]})`;
  return null;
}

/** The longest prefix of an aligned block holding `ip` where AWS reserves nothing at `ip`, or null. */
export function unreservedLen(ip: number, from: number): number | null {
  for (let len = from; len >= 1; len--) {
    const c = norm({ addr: ip, len });
    if (reservedIn(c, ip) === null) return len;
  }
  return null;
}

/** The option that widens private subnets, as replay spells it. */
export const SUBNET_LEN_MIN_OPTION = '--subnet-len-min';

function smallestCover(list: Cidr[]): Cidr {
  let c = list[0];
  for (const x of list) while (!cidrWithin(x, c)) c = widen(c);
  return c;
}

/** A free aligned block of prefix `len` in `vpc` not overlapping `used`, or null. */
function freeBlock(vpc: Cidr, len: number, used: Cidr[]): Cidr | null {
  if (len <= vpc.len) return null;
  const size = 2 ** (32 - len);
  const candidates = [vpc.addr, ...used.map((u) => cidrLast(u) + 1)];
  for (const start of candidates) {
    const a = Math.ceil(start / size) * size;
    const b: Cidr = { addr: a >>> 0, len };
    if (a > cidrLast(vpc) || !cidrWithin(b, vpc)) continue;
    if (!used.some((u) => cidrOverlaps(u, b))) return b;
  }
  return null;
}

export function buildCaptureScenario(opts: CaptureScenarioOptions): Scenario {
  const where = 'capture scenario';
  if (opts.inside.length === 0)
    throw new InputError(`${where}: no inside CIDR given (--inside CIDR)`, CAPTURE_SOURCE, 'inside');
  const inside = opts.inside.map(norm);
  const subnetLenMin = opts.subnetLenMin ?? CAPTURE_SUBNET_LEN_MIN;
  // A VPC must hold the widest subnet and a public subnet beside it.
  const vpcLenMin = Math.max(1, Math.min(CAPTURE_VPC_LEN_MIN, subnetLenMin - 1));
  const hosts = [...new Set(opts.insideHosts.map((h) => h >>> 0))].sort((a, b) => a - b);
  for (const h of hosts) {
    if (!inside.some((c) => cidrContains(c, h)))
      throw new InputError(
        `${where}: inside host ${formatIpv4(h)} is in none of the inside CIDRs (${inside.map(formatCidr).join(', ')})`,
        CAPTURE_SOURCE,
        'insideHosts',
      );
    const why = nonUnicastReason(h);
    if (why) throw new InputError(`${where}: inside host ${formatIpv4(h)} ${why}`, CAPTURE_SOURCE, 'insideHosts');
  }

  // Private subnets: per inside CIDR, the smallest CIDR covering its hosts, at least a /24 (the
  // inside CIDRs themselves when no host is known), widened until no host sits on an address AWS
  // reserves.
  let subnets: Cidr[];
  if (hosts.length === 0) subnets = disjoint(inside.map((c) => (c.len > 28 ? norm({ addr: c.addr, len: 28 }) : c)));
  else {
    const covers: Cidr[] = [];
    for (const c of inside) {
      const mine = hosts.filter((h) => cidrContains(c, h));
      if (mine.length === 0) continue;
      let cover = smallestCover(mine.map((h) => ({ addr: h, len: 32 })));
      while (cover.len > CAPTURE_VPC_LEN_MAX) cover = widen(cover);
      covers.push(cover);
    }
    subnets = disjoint(covers);
  }
  for (let changed = true; changed; ) {
    changed = false;
    for (const sn of subnets) {
      const bad = hosts.find((h) => cidrContains(sn, h) && reservedIn(sn, h) !== null);
      if (bad === undefined) continue;
      if (sn.len <= subnetLenMin) {
        // The way forward: the prefix where the host is an ordinary address, if there is one.
        const len = unreservedLen(bad, sn.len - 1);
        const hint =
          len !== null
            ? `: replay with ${SUBNET_LEN_MIN_OPTION} ${len} to build a larger subnet (${formatCidr(norm({ addr: bad, len }))}) where it is an ordinary host`
            : '';
        throw new InputError(
          `${where}: inside host ${formatIpv4(bad)} is ${reservedIn(sn, bad)} of subnet ${formatCidr(sn)} and of every smaller subnet holding it; AWS cannot place an instance there${hint}`,
          CAPTURE_SOURCE,
          'insideHosts',
        );
      }
      subnets = disjoint([...subnets.filter((x) => x !== sn), widen(sn)]);
      changed = true;
      break;
    }
  }

  // VPC: the smallest CIDR covering the private subnets (at least a /24), widened until a public
  // subnet fits beside them.
  let vpc = smallestCover(subnets);
  if (vpc.len < vpcLenMin) {
    // The way forward: one inside network per replay; the other hosts become internet hosts.
    const used = inside.filter((c) => hosts.some((h) => cidrContains(c, h)));
    const hint =
      used.length > 1
        ? `: replay with one of ${used.map((c) => `--inside ${formatCidr(c)}`).join(', ')} (the other hosts become internet hosts)`
        : '';
    throw new InputError(
      `${where}: the inside networks (${subnets.map(formatCidr).join(', ')}) span ${formatCidr(vpc)}; no VPC of /${vpcLenMin} or smaller holds them all${hint}`,
      CAPTURE_SOURCE,
      'inside',
    );
  }
  while (vpc.len > CAPTURE_VPC_LEN_MAX) vpc = widen(vpc);
  let pub: Cidr | null = null;
  for (;;) {
    pub = freeBlock(vpc, 24, subnets) ?? freeBlock(vpc, 28, subnets);
    if (pub) break;
    if (vpc.len <= vpcLenMin)
      throw new InputError(
        `${where}: no room for a public subnet beside the inside networks (${subnets.map(formatCidr).join(', ')}) in any VPC of /${vpcLenMin} or smaller`,
        CAPTURE_SOURCE,
        'inside',
      );
    vpc = widen(vpc);
  }
  const outside = [...new Set(opts.outsideHosts.map((h) => h >>> 0))]
    .filter((h) => nonUnicastReason(h) === null)
    .sort((a, b) => a - b);
  for (const h of outside) {
    if (cidrContains(vpc, h))
      throw new InputError(
        `${where}: outside host ${formatIpv4(h)} falls inside the VPC CIDR ${formatCidr(vpc)} chosen for the inside networks (${inside.map(formatCidr).join(', ')}); narrow --inside or drop that traffic`,
        CAPTURE_SOURCE,
        'outsideHosts',
      );
  }
  const natIp = (pub.addr + CAPTURE_NAT_OFFSET) >>> 0;
  const outsideSet = new Set(outside);
  let eip: number | null = opts.elasticIp ?? null;
  if (eip !== null && (outsideSet.has(eip) || cidrContains(vpc, eip)))
    throw new InputError(
      `${where}: the NAT's outside address ${formatIpv4(eip)} is also ${outsideSet.has(eip) ? 'an outside host' : `inside the VPC CIDR ${formatCidr(vpc)}`}`,
      CAPTURE_SOURCE,
      'elasticIp',
    );
  for (const net of eip === null ? DOC_NETS : []) {
    for (const off of [CAPTURE_NAT_OFFSET, ...Array.from({ length: 254 }, (_, i) => i + 1)]) {
      const a = (net.addr + off) >>> 0;
      if (!outsideSet.has(a) && !cidrContains(vpc, a)) {
        eip = a;
        break;
      }
    }
    if (eip !== null) break;
  }
  if (eip === null)
    throw new InputError(
      `${where}: every documentation address (RFC 5737) is used by an outside host; no free Elastic IP for the NAT instance`,
      CAPTURE_SOURCE,
      'outsideHosts',
    );

  const subnetName = (i: number): string => (subnets.length === 1 ? 'private' : `private-${i + 1}`);
  const obj = {
    name: opts.name ?? 'capture',
    vpc: { cidr: formatCidr(vpc) },
    routeTables: {
      public: [{ dest: '0.0.0.0/0', target: 'igw' }],
      private: [{ dest: '0.0.0.0/0', target: `eni:${CAPTURE_NAT_NAME}` }],
    },
    subnets: {
      public: { cidr: formatCidr(pub), routeTable: 'public' },
      ...Object.fromEntries(subnets.map((sn, i) => [subnetName(i), { cidr: formatCidr(sn), routeTable: 'private' }])),
    },
    instances: {
      [CAPTURE_NAT_NAME]: {
        subnet: 'public',
        privateIp: formatIpv4(natIp),
        elasticIp: formatIpv4(eip),
        sourceDestCheck: false,
        natInstance: { bootScript: 'configure-pat', vpcCidrFromMetadata: true },
      },
      ...Object.fromEntries(
        hosts.map((h) => [
          `h-${formatIpv4(h).replace(/\./g, '-')}`,
          { subnet: subnetName(subnets.findIndex((sn) => cidrContains(sn, h))), privateIp: formatIpv4(h) },
        ]),
      ),
    },
    internet: { hosts: outside.map(formatIpv4) },
  };
  return compileScenarioObject(obj, CAPTURE_SOURCE);
}
