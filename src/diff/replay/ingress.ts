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

function inCidr(addr: number, base: number, len: number): boolean {
  if (len === 0) return true;
  const mask = (0xffffffff << (32 - len)) >>> 0;
  return (addr & mask) >>> 0 === base;
}

/** Non-unicast or unusable as a source: 0/8, 127/8, 224/4 (multicast), 240/4 (incl. broadcast). */
export function isNonUnicastSource(addr: number): boolean {
  const a = addr >>> 24;
  return a === 0 || a === 127 || a >= 224;
}

export class IngressMap {
  /** privateIp -> instance index. */
  readonly byPrivate = new Map<number, number>();
  /** elasticIp -> instance index. */
  readonly byElastic = new Map<number, number>();
  private readonly vpcBase: number;
  private readonly vpcLen: number;
  /** Why the last classify() returned INGRESS_NOWHERE. */
  lastWhy = 0;

  constructor(readonly scenario: Scenario) {
    scenario.instances.forEach((inst, i) => {
      this.byPrivate.set(inst.privateIp >>> 0, i);
      if (inst.elasticIp !== null) this.byElastic.set(inst.elasticIp >>> 0, i);
    });
    this.vpcBase = scenario.vpcCidr.addr >>> 0;
    this.vpcLen = scenario.vpcCidr.len;
  }

  /** The ingress point of a frame with this source, or INGRESS_NOWHERE (see lastWhy). */
  classify(src: number): number {
    src >>>= 0;
    const inst = this.byPrivate.get(src);
    if (inst !== undefined) return instancePoint(inst);
    if (isNonUnicastSource(src)) {
      this.lastWhy = NOWHERE_NOT_UNICAST;
      return INGRESS_NOWHERE;
    }
    if (inCidr(src, this.vpcBase, this.vpcLen)) {
      this.lastWhy = NOWHERE_VPC_NO_INSTANCE;
      return INGRESS_NOWHERE;
    }
    if (this.byElastic.has(src)) {
      this.lastWhy = NOWHERE_ELASTIC_IP;
      return INGRESS_NOWHERE;
    }
    return POINT_INTERNET;
  }

  /** Instance index whose private IP is `addr`, or -1. */
  privateOwner(addr: number): number {
    return this.byPrivate.get(addr >>> 0) ?? -1;
  }
}
