// Replay ingress rules: where a captured frame enters the scenario, decided from its source
// address alone (never guessed from anything else):
//   - an instance's private IP              -> that instance's ENI (instancePoint(i))
//   - an address outside the VPC CIDR that is
//     not an Elastic IP of the scenario      -> the internet (POINT_INTERNET)
//   - anything else                          -> nowhere (counted as no-ingress, not fed)
// "Anything else" is: an address inside the VPC that no instance owns, an instance's Elastic IP as
// a *source* (that frame was captured on the internet side after translation: it is an output,
// not an input), and non-unicast sources (0/8, 127/8, multicast, 255.255.255.255).
import type { Scenario } from '../../spec/scenario.ts';
import { POINT_INTERNET, instancePoint } from '../../spec/scenario.ts';

export const INGRESS_NOWHERE = -1;

/** Why a source belongs nowhere (index into NOWHERE_WHY). */
export const NOWHERE_VPC_NO_INSTANCE = 0;
export const NOWHERE_ELASTIC_IP = 1;
export const NOWHERE_NOT_UNICAST = 2;
export const NOWHERE_UNREADABLE = 3;
export const NOWHERE_WHY: readonly string[] = [
  'source is inside the VPC but no instance has that address',
  "source is an instance's Elastic IP (a translated, internet-side frame: an output, not an input)",
  'source is not a unicast address',
  'source address unreadable (IPv4 header missing or not version 4)',
];

/** Non-unicast or unusable as a source: 0/8, 127/8, 224/4 (multicast), 240/4 (incl. broadcast). */
export function isNonUnicastSource(addr: number): boolean {
  const a = addr >>> 24;
  return a === 0 || a === 127 || a >= 224;
}

/**
 * IPv4 address -> small index, in typed arrays (open addressing): a lookup per packet without the
 * boxed numbers a Map<number, number> costs for addresses above 2^30.
 */
export class AddrIndex {
  private readonly keys: Int32Array;
  private readonly vals: Int32Array;
  private readonly mask: number;
  private readonly shift: number;
  constructor(entries: ReadonlyArray<readonly [number, number]>) {
    let size = 8;
    while (size < entries.length * 2) size <<= 1;
    this.keys = new Int32Array(size);
    this.vals = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    this.shift = 32 - Math.log2(size);
    for (const [addr, v] of entries) {
      let h = this.home(addr | 0);
      // A key given twice keeps the last value, as Map.set would.
      while (this.vals[h] >= 0 && this.keys[h] !== (addr | 0)) h = (h + 1) & this.mask;
      this.keys[h] = addr | 0;
      this.vals[h] = v;
    }
  }
  private home(a: number): number {
    return Math.imul(a, 0x9e3779b1) >>> this.shift;
  }
  /** The index stored for `addr`, or -1. */
  get(addr: number): number {
    const a = addr | 0;
    const keys = this.keys;
    const vals = this.vals;
    let h = this.home(a);
    for (let n = 0; n <= this.mask; n++) {
      const v = vals[h];
      if (v < 0) return -1;
      if (keys[h] === a) return v;
      h = (h + 1) & this.mask;
    }
    return -1;
  }
}

export class IngressMap {
  /** privateIp -> instance index. */
  private readonly byPrivate: AddrIndex;
  /** elasticIp -> instance index. */
  private readonly byElastic: AddrIndex;
  private readonly vpcBase: number;
  private readonly vpcMask: number;
  /** Why the last classify() returned INGRESS_NOWHERE. */
  lastWhy = 0;

  constructor(readonly scenario: Scenario) {
    this.byPrivate = new AddrIndex(scenario.instances.map((inst, i) => [inst.privateIp, i] as const));
    this.byElastic = new AddrIndex(
      scenario.instances.flatMap((inst, i) => (inst.elasticIp === null ? [] : [[inst.elasticIp, i] as const])),
    );
    const len = scenario.vpcCidr.len;
    this.vpcMask = len === 0 ? 0 : (0xffffffff << (32 - len)) | 0;
    this.vpcBase = scenario.vpcCidr.addr & this.vpcMask;
  }

  /** The ingress point of a frame with this source, or INGRESS_NOWHERE (see lastWhy). */
  classify(src: number): number {
    const inst = this.byPrivate.get(src);
    if (inst >= 0) return instancePoint(inst);
    if (isNonUnicastSource(src)) {
      this.lastWhy = NOWHERE_NOT_UNICAST;
      return INGRESS_NOWHERE;
    }
    if ((src & this.vpcMask) === this.vpcBase) {
      this.lastWhy = NOWHERE_VPC_NO_INSTANCE;
      return INGRESS_NOWHERE;
    }
    if (this.byElastic.get(src) >= 0) {
      this.lastWhy = NOWHERE_ELASTIC_IP;
      return INGRESS_NOWHERE;
    }
    return POINT_INTERNET;
  }

  /** Instance index whose private IP is `addr`, or -1. */
  privateOwner(addr: number): number {
    return this.byPrivate.get(addr);
  }
}
