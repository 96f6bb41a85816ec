// The AWS filtering layers in the model (docs/semantics.md §11): network ACLs (stateless, checked
// where a packet crosses a subnet boundary) and security groups (checked at each ENI, in and out,
// with their own per-ENI connection tracking, separate from any instance's Linux conntrack).
// Written for reading: Maps keyed by text, one function per rule of the contract.

import {
  ICMP_ADDRESS,
  ICMP_ADDRESSREPLY,
  ICMP_ECHO,
  ICMP_ECHOREPLY,
  ICMP_INFO_REPLY,
  ICMP_INFO_REQUEST,
  ICMP_TIMESTAMP,
  ICMP_TIMESTAMPREPLY,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
} from '../packet/constants.ts';
import type { PacketView } from '../packet/parse.ts';
import { formatIpv4 } from '../packet/addr.ts';
import {
  FILTER_PROTO_ALL,
  ICMP_ANY,
  SG_ICMP_TIMEOUT,
  SG_OTHER_TIMEOUT,
  SG_TCP_UNREPLIED_TIMEOUT,
  type AclRule,
  type FilterMatch,
  type NetworkAcl,
  type SecurityGroup,
  type SgRule,
  type SgTracking,
} from '../spec/aws-filters.ts';
import type { Cidr, Scenario } from '../spec/scenario.ts';

export const SG_IN = 0;
export const SG_OUT = 1;

/** What the filters can read of a packet (docs/semantics.md §11 "what a rule sees"). */
export interface FilterFacts {
  proto: number;
  src: number;
  dst: number;
  /** TCP/UDP ports readable (not a non-first fragment, header long enough: TCP 20, UDP 8 bytes). */
  hasPorts: boolean;
  sport: number;
  dport: number;
  /** ICMP type/code readable (not a non-first fragment, 8 bytes of ICMP header). */
  hasIcmp: boolean;
  icmpType: number;
  icmpCode: number;
  icmpId: number;
}

export function filterFacts(pv: PacketView): FilterFacts {
  const whole = pv.fragOff === 0;
  const hasPorts = whole && ((pv.proto === PROTO_TCP && pv.l4Len >= 20) || (pv.proto === PROTO_UDP && pv.l4Len >= 8));
  const hasIcmp = whole && pv.proto === PROTO_ICMP && pv.l4Len >= 8;
  return {
    proto: pv.proto,
    src: pv.src,
    dst: pv.dst,
    hasPorts,
    sport: hasPorts ? pv.sport : 0,
    dport: hasPorts ? pv.dport : 0,
    hasIcmp,
    icmpType: hasIcmp ? pv.icmpType : -1,
    icmpCode: hasIcmp ? pv.icmpCode : -1,
    icmpId: hasIcmp ? pv.icmpId : 0,
  };
}

function inCidr(c: Cidr, a: number): boolean {
  if (c.len === 0) return true;
  const m = (0xffffffff << (32 - c.len)) >>> 0;
  return (a & m) >>> 0 === c.addr;
}

/** Protocol, destination port range, ICMP type/code (a range narrower than all needs readable ports). */
export function matchesFilter(m: FilterMatch, f: FilterFacts): boolean {
  if (m.proto !== FILTER_PROTO_ALL && m.proto !== f.proto) return false;
  if (m.proto === PROTO_TCP || m.proto === PROTO_UDP) {
    if (m.portLo === 0 && m.portHi === 65535) return true;
    return f.hasPorts && f.dport >= m.portLo && f.dport <= m.portHi;
  }
  if (m.proto === PROTO_ICMP) {
    if (m.icmpType !== ICMP_ANY && (!f.hasIcmp || f.icmpType !== m.icmpType)) return false;
    if (m.icmpCode !== ICMP_ANY && (!f.hasIcmp || f.icmpCode !== m.icmpCode)) return false;
  }
  return true;
}

function protoText(p: number): string {
  return p === FILTER_PROTO_ALL
    ? 'all'
    : p === PROTO_TCP
      ? 'tcp'
      : p === PROTO_UDP
        ? 'udp'
        : p === PROTO_ICMP
          ? 'icmp'
          : `proto ${p}`;
}

export function matchText(m: FilterMatch): string {
  const p = protoText(m.proto);
  if (m.proto === PROTO_TCP || m.proto === PROTO_UDP) {
    if (m.portLo === 0 && m.portHi === 65535) return `${p} all ports`;
    return m.portLo === m.portHi ? `${p} ${m.portLo}` : `${p} ${m.portLo}-${m.portHi}`;
  }
  if (m.proto === PROTO_ICMP && m.icmpType !== ICMP_ANY)
    return m.icmpCode !== ICMP_ANY ? `${p} type ${m.icmpType} code ${m.icmpCode}` : `${p} type ${m.icmpType}`;
  return p;
}

function cidrText(c: Cidr): string {
  return `${formatIpv4(c.addr)}/${c.len}`;
}

// --- network ACLs --------------------------------------------------------------------------------

export interface AclVerdict {
  allow: boolean;
  /** 'rule 100 allow tcp 1024-65535 0.0.0.0/0' or 'rule * deny (no rule matched)'. */
  text: string;
}

/** Lowest-numbered matching rule decides; none: the `*` rule denies. The remote address is the source (inbound) or destination (outbound). */
export function evaluateAcl(acl: NetworkAcl, dir: number, f: FilterFacts): AclVerdict {
  const rules: AclRule[] = dir === SG_IN ? acl.inbound : acl.outbound;
  const remote = dir === SG_IN ? f.src : f.dst;
  for (const r of rules) {
    if (!inCidr(r.cidr, remote) || !matchesFilter(r, f)) continue;
    return { allow: r.action === 'allow', text: `rule ${r.num} ${r.action} ${matchText(r)} ${cidrText(r.cidr)}` };
  }
  return { allow: false, text: 'rule * deny (no rule matched)' };
}

// --- security groups -----------------------------------------------------------------------------

/** A tracked flow of one ENI's security-group connection tracking. */
interface SgEntry {
  proto: number;
  origKey: string;
  replyKey: string;
  expiresMs: number;
  seenReply: boolean;
  /** UDP: request-response transactions completed (a reply after an original-direction packet). */
  transactions: number;
  /** UDP: direction of the last packet (0 orig, 1 reply). */
  lastDir: number;
}

export interface SgVerdict {
  /** 0 pass, else the drop: 'deny' or 'allowance'. */
  drop: '' | 'deny' | 'allowance';
  note: string;
}

const ICMP_REQUEST_OF_REPLY: Readonly<Record<number, number>> = {
  [ICMP_ECHOREPLY]: ICMP_ECHO,
  [ICMP_TIMESTAMPREPLY]: ICMP_TIMESTAMP,
  [ICMP_INFO_REPLY]: ICMP_INFO_REQUEST,
  [ICMP_ADDRESSREPLY]: ICMP_ADDRESS,
};
const ICMP_REQUESTS = new Set([ICMP_ECHO, ICMP_TIMESTAMP, ICMP_INFO_REQUEST, ICMP_ADDRESS]);

/**
 * The packet's tracking key and the key of the opposite direction, or null for packets the
 * security group never tracks (ICMP errors and other ICMP types, TCP/UDP without readable ports).
 * ICMP queries: a request (src, dst, id) pairs with the reply (dst, src, id) of the same kind.
 */
export function sgKeys(f: FilterFacts): { key: string; reverse: string; request: boolean } | null {
  if (f.proto === PROTO_TCP || f.proto === PROTO_UDP) {
    if (!f.hasPorts) return null;
    return {
      key: `${f.proto} ${f.src}:${f.sport} ${f.dst}:${f.dport}`,
      reverse: `${f.proto} ${f.dst}:${f.dport} ${f.src}:${f.sport}`,
      request: true,
    };
  }
  if (f.proto === PROTO_ICMP) {
    if (!f.hasIcmp) return null;
    if (ICMP_REQUESTS.has(f.icmpType))
      return {
        key: `1 ${f.src} ${f.dst} id ${f.icmpId} type ${f.icmpType}`,
        reverse: `1 ${f.dst} ${f.src} id ${f.icmpId} type ${f.icmpType} reply`,
        request: true,
      };
    const req = ICMP_REQUEST_OF_REPLY[f.icmpType];
    if (req === undefined) return null;
    return {
      key: `1 ${f.src} ${f.dst} id ${f.icmpId} type ${req} reply`,
      reverse: `1 ${f.dst} ${f.src} id ${f.icmpId} type ${req}`,
      request: false,
    };
  }
  return { key: `${f.proto} ${f.src} ${f.dst}`, reverse: `${f.proto} ${f.dst} ${f.src}`, request: true };
}

/** One ENI's security groups: rules of its groups and its tracking table. */
export class EniSecurity {
  private readonly byKey = new Map<string, SgEntry>();
  private count = 0;
  /**
   * No entry expires before this (a lower bound, exact after a scan; every new expiry lowers it):
   * expire() scans the table only when it can find something, as the conntrack table does —
   * scanning on every packet made security-grouped runs ×10 slower at 1k flows.
   */
  private minExpiryMs = Infinity;
  /** Packets dropped because the tracked-connection allowance was used up (conntrack_allowance_exceeded). */
  allowanceExceeded = 0;
  /** The scenario's security groups (their rules change with setGroups). */
  private sgs: SecurityGroup[];

  constructor(
    private readonly scenario: Scenario,
    readonly groups: readonly number[],
    readonly tracking: SgTracking,
  ) {
    this.sgs = scenario.securityGroups ?? [];
  }

  /** New rules for the scenario's groups (a mid-run change): tracked flows stay. */
  setGroups(groups: SecurityGroup[]): void {
    this.sgs = groups;
  }

  get tracked(): number {
    return this.count;
  }

  /** Removes entries whose time is up (dead iff now >= expiry, docs/semantics.md §7). */
  expire(nowMs: number): void {
    if (nowMs < this.minExpiryMs) return;
    let min = Infinity;
    for (const [k, e] of this.byKey) {
      if (e.origKey !== k) continue;
      if (nowMs < e.expiresMs) {
        if (e.expiresMs < min) min = e.expiresMs;
        continue;
      }
      this.byKey.delete(e.origKey);
      this.byKey.delete(e.replyKey);
      this.count--;
    }
    this.minExpiryMs = min;
  }

  /** Sets an entry's idle timer (and keeps minExpiryMs a lower bound). */
  private setExpiry(e: SgEntry, expiresMs: number): void {
    e.expiresMs = expiresMs;
    if (expiresMs < this.minExpiryMs) this.minExpiryMs = expiresMs;
  }

  private timeoutS(e: SgEntry): number {
    if (e.proto === PROTO_TCP) return e.seenReply ? this.tracking.tcpEstablished : SG_TCP_UNREPLIED_TIMEOUT;
    if (e.proto === PROTO_UDP) return e.transactions >= 2 ? this.tracking.udpStream : this.tracking.udp;
    if (e.proto === PROTO_ICMP) return SG_ICMP_TIMEOUT;
    return SG_OTHER_TIMEOUT;
  }

  /** Rules of every group of the ENI in direction `dir`, in order. */
  private rules(dir: number): Array<{ group: string; index: number; rule: SgRule }> {
    const out: Array<{ group: string; index: number; rule: SgRule }> = [];
    const groups = this.sgs;
    for (const g of this.groups) {
      const sg = groups[g];
      (dir === SG_IN ? sg.inbound : sg.outbound).forEach((rule, index) => out.push({ group: sg.name, index, rule }));
    }
    return out;
  }

  /** The remote address matches the rule: its CIDR, or the private IP of an instance in the referenced group. */
  private remoteMatches(r: SgRule, remote: number): boolean {
    if (r.cidr) return inCidr(r.cidr, remote);
    return this.scenario.instances.some(
      (i) => i.privateIp === remote && (i.security?.groups.includes(r.group) ?? false),
    );
  }

  /**
   * AWS's untracked flows: a TCP/UDP flow allowed in its request direction by a 0.0.0.0/0 rule,
   * with a 0.0.0.0/0 rule for all ports of its protocol in the other (response) direction, is not
   * tracked — its packets either way. A packet with no tracked flow may be the request (this
   * direction's 0.0.0.0/0 rule allows it, the other direction is open) or the response (the other
   * direction's 0.0.0.0/0 rule allows the reversed packet, this direction is open).
   */
  private untracked(dir: number, f: FilterFacts): boolean {
    if (f.proto !== PROTO_TCP && f.proto !== PROTO_UDP) return false;
    const open = (d: number): boolean =>
      this.rules(d).some(
        ({ rule: r }) =>
          r.cidr !== null &&
          r.cidr.len === 0 &&
          (r.proto === FILTER_PROTO_ALL || (r.proto === f.proto && r.portLo === 0 && r.portHi === 65535)),
      );
    const zeroRule = (d: number, g: FilterFacts): boolean =>
      this.rules(d).some(({ rule: r }) => r.cidr !== null && r.cidr.len === 0 && matchesFilter(r, g));
    const reversed: FilterFacts = { ...f, src: f.dst, dst: f.src, sport: f.dport, dport: f.sport };
    return (zeroRule(dir, f) && open(1 - dir)) || (zeroRule(1 - dir, reversed) && open(dir));
  }

  /** The security-group check of one packet crossing the ENI in direction `dir` (SG_IN / SG_OUT). */
  check(dir: number, f: FilterFacts, nowMs: number): SgVerdict {
    const keys = sgKeys(f);
    const e = keys ? this.byKey.get(keys.key) : undefined;
    if (e && keys) {
      const reply = e.replyKey === keys.key;
      if (reply) {
        e.seenReply = true;
        if (e.lastDir === 0) e.transactions++;
        e.lastDir = 1;
      } else e.lastDir = 0;
      const t = this.timeoutS(e);
      this.setExpiry(e, nowMs + t * 1000);
      return {
        drop: '',
        note: `tracked flow (${reply ? 'response' : 'original direction'}): allowed whatever the rules say; idle timeout ${t} s`,
      };
    }
    const remote = dir === SG_IN ? f.src : f.dst;
    const hit = this.rules(dir).find(({ rule }) => this.remoteMatches(rule, remote) && matchesFilter(rule, f));
    const where = dir === SG_IN ? 'inbound' : 'outbound';
    if (!hit)
      return {
        drop: 'deny',
        note: `no ${where} rule of ${this.groupNames()} allows it and it belongs to no tracked flow`,
      };
    const r = hit.rule;
    const ruleText = `${hit.group} ${where}[${hit.index}] ${matchText(r)} ${r.cidr ? cidrText(r.cidr) : `group ${this.sgs[r.group].name}`}`;
    if (!keys?.request)
      return {
        drop: '',
        note: `rule ${ruleText}; not tracked (${keys ? 'a reply with no tracked request' : 'not a trackable packet'})`,
      };
    if (this.untracked(dir, f))
      return { drop: '', note: `rule ${ruleText}; untracked flow (0.0.0.0/0 both ways): re-evaluated per packet` };
    if (this.count >= this.tracking.allowance) {
      this.allowanceExceeded++;
      return {
        drop: 'allowance',
        note: `rule ${ruleText}, but the ENI already tracks ${this.count} flows (allowance ${this.tracking.allowance}): conntrack_allowance_exceeded`,
      };
    }
    const n: SgEntry = {
      proto: f.proto,
      origKey: keys.key,
      replyKey: keys.reverse,
      expiresMs: 0,
      seenReply: false,
      transactions: 0,
      lastDir: 0,
    };
    this.setExpiry(n, nowMs + this.timeoutS(n) * 1000);
    this.byKey.set(n.replyKey, n);
    this.byKey.set(n.origKey, n);
    this.count++;
    return {
      drop: '',
      note: `rule ${ruleText}; tracked (new flow, ${this.count}/${this.tracking.allowance}, idle timeout ${this.timeoutS(n)} s)`,
    };
  }

  private groupNames(): string {
    return this.groups.map((g) => this.sgs[g].name).join(', ');
  }
}

/** Network ACL of each subnet (null: the default ACL, which allows everything). */
export function aclBySubnet(s: Scenario): (NetworkAcl | null)[] {
  const out: (NetworkAcl | null)[] = s.subnets.map(() => null);
  for (const a of s.networkAcls ?? []) for (const k of a.subnets) out[k] = a;
  return out;
}
