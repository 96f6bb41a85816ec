// The reference model engine: the whole path of docs/semantics.md §2 for one packet at a time —
// ENI source/dest check, VPC router (per-subnet route tables, longest prefix), IGW 1:1 static
// NAT, and NAT instances that behave like Linux (conntrack + the nat table, ip_forward, TTL).
// Every step is recorded as a Hop so `natlab trace` can show the packet as it is at each hop.
// Built for being obviously right, never for speed.

import {
  ICMP_TIME_EXCEEDED,
  ICMP_DEST_UNREACH,
  ICMP_EXC_TTL,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  isIcmpErrorType,
} from '../packet/constants.ts';
import {
  PacketView,
  parseIpv4,
  PARSE_FRAGMENT,
  PARSE_OK,
  isIpLevelMalformation,
  PARSE_STATUS_NAMES,
} from '../packet/parse.ts';
import { buildIcmpError } from '../packet/build.ts';
import {
  ipv4HeaderChecksum,
  csumReplace16,
  csumReplace32,
  udpCsumReplace32,
  verifyL4Checksum,
} from '../packet/checksum.ts';
import { formatIpv4, isMulticastOrBroadcast } from '../packet/addr.ts';
import type {
  ConntrackEntry,
  Engine,
  EngineDescriptor,
  EngineOptions,
  InputPacket,
  FilterRuleCounter,
  NatRuleCounter,
  OutputFrame,
  PacketResult,
} from '../spec/engine.ts';
import {
  CT_INVALID,
  CT_NAMES,
  CT_NEW,
  CT_NONE,
  CT_RELATED,
  DROP_BLACKHOLE,
  DROP_CT_TABLE_FULL,
  DROP_FRAGMENT,
  DROP_ICMP_BAD_CHECKSUM,
  DROP_ICMP_REDIRECT_NAT,
  DROP_IGW_NO_PUBLIC_IP,
  DROP_NACL_DENY,
  DROP_SG_ALLOWANCE,
  DROP_SG_DENY,
  DROP_IGW_UNKNOWN_DST,
  DROP_IP_FORWARD_OFF,
  DROP_MALFORMED,
  DROP_MARTIAN_SOURCE,
  DROP_MULTICAST,
  DROP_NAT_CLASH,
  DROP_NO_HOST,
  DROP_NO_INGRESS,
  DROP_NO_ROUTE,
  DROP_ROUTING_LOOP,
  DROP_SRC_DST_CHECK_DST,
  DROP_SRC_DST_CHECK_SRC,
  DROP_TCPMSS,
  DROP_FILTER_DROP,
  DROP_FILTER_REJECT,
  DROP_INSTANCE_STOPPED,
  DROP_TTL_EXCEEDED,
  FATE_DELIVERED,
  FATE_DROPPED,
  REASON_NONE,
  reasonName,
} from '../spec/reasons.ts';
import {
  MANGLE_CHAINS,
  NAT_CHAINS,
  POINT_INTERNET,
  instancePoint,
  type Instance,
  type NatChainName,
  type FilterChainName,
  type FilterTable,
  type MangleTable,
  type NatGateway,
  type Route,
  type Scenario,
} from '../spec/scenario.ts';
import { CLOCK_TICK_US, DEFAULT_IP_TTL, ICMP_ERROR_MAX_LEN } from '../spec/timeouts.ts';
import {
  ConntrackTable,
  conntrackIn,
  DIR_ORIG,
  DIR_REPLY,
  HOOK_OUT,
  HOOK_PRE,
  type CtEntry,
  type CtResult,
} from './conntrack.ts';
import { MANIP_DST, MANIP_SRC, ipDecreaseTtl } from './mangle.ts';
import { mangleHasRules, runMangleChain } from './tcpmss.ts';
import {
  FILTER_ACCEPT,
  FILTER_HOTDROP,
  FILTER_REJECT,
  type FilterResult,
  ctstateBit,
  filterWhere,
  runFilterChain,
} from './filter.ts';
import { rejectCode } from '../scenario/iptables-filter.ts';
import {
  ICMP_XLATE_BAD_CHECKSUM,
  ICMP_XLATE_OK,
  ICMP_XLATE_REDIRECT,
  icmpReplyTranslation,
  natPacket,
  natSetupInfo,
  nullBindingRange,
  rulePacketOf,
  runChain,
  targetRange,
} from './nat.ts';
import { Prng } from './prng.ts';
import { filterUpdateProblem } from '../scenario/filter-update.ts';
import { InputError } from '../spec/errors.ts';
import { ModelNatGateway } from './nat-gateway.ts';
import {
  compareNatGatewayConnections,
  natGatewayCounters,
  type NatGatewayConnection,
  type NatGatewayCounters,
} from '../spec/nat-gateway.ts';
import { F_RST } from '../packet/constants.ts';
import { TCP_RESET_LEN, writeTcpReset } from '../packet/tcp-reset.ts';
import { EniSecurity, SG_IN, SG_OUT, aclBySubnet, evaluateAcl, filterFacts } from './sg.ts';
import type { NetworkAcl } from '../spec/aws-filters.ts';
import { TCP_STATE_NAMES } from './tcp-state.ts';
import { IcmpRateLimiter } from './icmp-ratelimit.ts';
import { tupleText } from './tuple.ts';
import { rd16, rd32, wr16, wr32 } from '../packet/bytes.ts';
import { type TimelineEvent, flushedBy, isStopped, scenarioAfter } from '../spec/timeline.ts';

/** A path longer than this many instance hops is a routing loop (docs/semantics.md §2). */
export const MAX_INSTANCE_HOPS = 8;
/** The IGW sends a packet addressed to a VPC Elastic IP back in at most this often per input. */
export const MAX_HAIRPINS = 4;
const EMPTY = new Uint8Array(0);

/** The only interface of an instance. */
export const ETH0 = 'eth0';

/** One step of a packet's path, for `natlab trace`. */
export interface Hop {
  /** 'instance app → ENI', 'VPC router (rtb private)', 'NAT instance nat: conntrack NEW', ... */
  name: string;
  /** The packet as it is after this step (a copy). */
  packet: Uint8Array;
  /** What happened and why. */
  note: string;
  /** The drop reason when the packet was dropped at this hop. */
  drop?: number;
  /** The output point when the packet left the system at this hop. */
  egress?: number;
}

export type ModelResult = PacketResult & {
  hops: Hop[];
  /** Index in `outputs` of the input packet itself when it was delivered (else -1). */
  delivered: number;
};

/** Per rule (index) and policy (-1) connection counters of one chain. */
interface ChainCounters {
  rules: { packets: number; bytes: number }[];
  policy: { packets: number; bytes: number };
}

/** Everything recorded while one input packet (and what it causes) walks the path. */
interface Walk {
  hops: Hop[];
  outputs: OutputFrame[];
  fate: number;
  reason: number;
  detail: number;
  ct: number;
  instanceHops: number;
  /** Prefix for hop names of a generated packet ('ICMP error: '). */
  prefix: string;
  /** Index in `outputs` of the packet that was delivered (the forwarded one), or -1. */
  delivered: number;
  /** Times the IGW sent the packet back in (addressed to an Elastic IP of the VPC). */
  hairpins: number;
}

function parse(pkt: Uint8Array): PacketView {
  const pv = new PacketView();
  parseIpv4(pkt, 0, pkt.length, pv);
  return pv;
}

export interface ModelEngineOptions extends EngineOptions {}

export class ModelEngine implements Engine {
  readonly name = 'model';
  private nowMs = 0;
  private readonly rng: Prng;
  /** Copy the packet into every Hop (processOne); process() turns it off. */
  private recordHopPackets = true;
  /** Conntrack table per instance index (null for plain hosts). */
  private readonly tables: (ConntrackTable | null)[];
  /** nat counters per instance index and chain. */
  private readonly counters: (Record<NatChainName, ChainCounters> | null)[];
  /** filter counters per instance index and chain (built-in and user chains). */
  private readonly filterCells: (Record<string, ChainCounters> | null)[];
  /** The scenario's NAT gateways (docs/semantics.md "NAT gateway"), same order. */
  private readonly gateways: ModelNatGateway[];
  /** Security groups of each instance's ENI (null: not filtered). */
  private readonly security: (EniSecurity | null)[];
  /** Network ACL of each subnet (null: the default ACL, allows everything); replaced by setFilterRules. */
  private acls: (NetworkAcl | null)[];

  /** The scenario as the timeline events so far left it (applyTimelineEvent). */
  scenario: Scenario;

  /** Each instance's ICMP error rate limits (its kernel's: kept across timeline events). */
  private readonly icmpLimits: IcmpRateLimiter[];

  constructor(scenario: Scenario, opts: ModelEngineOptions = {}) {
    this.scenario = scenario;
    this.rng = new Prng(opts.seed ?? 1);
    this.gateways = (scenario.natGateways ?? []).map((g) => new ModelNatGateway(g, opts.seed ?? 1));
    this.tables = scenario.instances.map((i) => (i.nat ? new ConntrackTable(scenario.conntrack) : null));
    this.icmpLimits = scenario.instances.map((i) => new IcmpRateLimiter(i.sysctls));
    this.counters = scenario.instances.map((i) => {
      if (!i.nat) return null;
      const c = {} as Record<NatChainName, ChainCounters>;
      for (const ch of NAT_CHAINS) {
        c[ch] = { rules: i.nat.chains[ch].map(() => ({ packets: 0, bytes: 0 })), policy: { packets: 0, bytes: 0 } };
      }
      return c;
    });
    this.filterCells = scenario.instances.map((i) => {
      if (!i.nat || !i.filter) return null;
      const c: Record<string, ChainCounters> = {};
      for (const [ch, rules] of Object.entries(i.filter.chains))
        c[ch] = { rules: rules.map(() => ({ packets: 0, bytes: 0 })), policy: { packets: 0, bytes: 0 } };
      return c;
    });
    this.security = scenario.instances.map((i) =>
      i.security ? new EniSecurity(scenario, i.security.groups, i.security.tracking) : null,
    );
    this.acls = aclBySubnet(scenario);
  }

  // --- Engine -----------------------------------------------------------------------------------

  async process(batch: readonly InputPacket[]): Promise<PacketResult[]> {
    // The Engine API needs no hops: skip copying the packet at every hop.
    this.recordHopPackets = false;
    try {
      return batch.map((p) => {
        const r = this.processOne(p);
        return { fate: r.fate, reason: r.reason, detail: r.detail, ct: r.ct, outputs: r.outputs };
      });
    } finally {
      this.recordHopPackets = true;
    }
  }

  async advance(timeUs: number): Promise<void> {
    this.advanceSync(timeUs);
  }

  async conntrack(): Promise<ConntrackEntry[]> {
    return this.conntrackSync();
  }

  async natCounters(): Promise<NatRuleCounter[]> {
    return this.natCountersSync();
  }

  async filterCounters(): Promise<FilterRuleCounter[]> {
    return this.filterCountersSync();
  }

  async natGatewayCounters(): Promise<NatGatewayCounters[]> {
    return this.natGatewayCountersSync();
  }

  async natGatewayConnections(): Promise<NatGatewayConnection[]> {
    return this.gateways.flatMap((g, i) => g.connections(i, this.nowMs)).sort(compareNatGatewayConnections);
  }

  natGatewayCountersSync(): NatGatewayCounters[] {
    return this.gateways.map((g, i) => natGatewayCounters(i, g.gw.name, g.counters));
  }

  async close(): Promise<void> {}

  async setFilterRules(next: Scenario): Promise<void> {
    this.setFilterRulesSync(next);
  }

  /** Replaces the security groups' rules and the ACLs' entries with next's (docs/semantics.md §11). */
  setFilterRulesSync(next: Scenario): void {
    const why = filterUpdateProblem(this.scenario, next);
    if (why) throw new InputError(`model engine: setFilterRules: ${why}`);
    for (const sg of this.security) sg?.setGroups(next.securityGroups ?? []);
    this.acls = aclBySubnet(next);
  }

  async applyTimelineEvent(event: TimelineEvent, timeUs: number): Promise<void> {
    this.applyTimelineEventSync(event, timeUs);
  }

  /** A timeline event at capture time timeUs (docs/semantics.md §14): the new scenario, emptied conntrack tables. */
  applyTimelineEventSync(event: TimelineEvent, timeUs: number): void {
    this.advanceSync(timeUs);
    const next = scenarioAfter(this.scenario, event.action);
    if (event.action.kind === 'setFilterRules') this.setFilterRulesSync(next);
    this.scenario = next;
    for (const i of flushedBy(event.action)) if (this.tables[i]) this.tables[i] = new ConntrackTable(next.conntrack);
  }

  // --- synchronous helpers ----------------------------------------------------------------------

  /** Current virtual time, ms. */
  get timeMs(): number {
    return this.nowMs;
  }

  /** Moves the clock forward (never back) and expires entries (docs/semantics.md §7). */
  advanceSync(timeUs: number): void {
    const ms = Math.floor(timeUs / CLOCK_TICK_US);
    if (ms > this.nowMs) this.nowMs = ms;
    for (const t of this.tables) t?.expire(this.nowMs);
    for (const g of this.gateways) g.expire(this.nowMs);
    for (const sg of this.security) sg?.expire(this.nowMs);
  }

  /** Tracked flows and conntrack_allowance_exceeded drops of instance i's ENI (null: no security groups). */
  securityTracking(i: number): { tracked: number; allowanceExceeded: number } | null {
    const sg = this.security[i];
    if (!sg) return null;
    sg.expire(this.nowMs);
    return { tracked: sg.tracked, allowanceExceeded: sg.allowanceExceeded };
  }

  conntrackSync(): ConntrackEntry[] {
    const out: ConntrackEntry[] = [];
    this.tables.forEach((t, i) => {
      if (!t) return;
      t.expire(this.nowMs);
      for (const e of t.list()) out.push(toConntrackEntry(e, i, this.nowMs));
    });
    return out;
  }

  natCountersSync(): NatRuleCounter[] {
    const out: NatRuleCounter[] = [];
    this.counters.forEach((c, i) => {
      if (!c) return;
      for (const ch of NAT_CHAINS) {
        c[ch].rules.forEach((r, k) =>
          out.push({ instance: i, chain: ch, rule: k, packets: r.packets, bytes: r.bytes }),
        );
        out.push({ instance: i, chain: ch, rule: -1, packets: c[ch].policy.packets, bytes: c[ch].policy.bytes });
      }
    });
    return out;
  }

  /** Filter-table counters of every NAT instance with a filter table (rule -1: the chain's policy). */
  filterCountersSync(): FilterRuleCounter[] {
    const out: FilterRuleCounter[] = [];
    this.filterCells.forEach((c, i) => {
      if (!c) return;
      for (const [ch, cc] of Object.entries(c)) {
        cc.rules.forEach((r, k) => out.push({ instance: i, chain: ch, rule: k, packets: r.packets, bytes: r.bytes }));
        out.push({ instance: i, chain: ch, rule: -1, packets: cc.policy.packets, bytes: cc.policy.bytes });
      }
    });
    return out;
  }

  /** Processes one packet and returns its result with the hops of its path. */
  processOne(input: InputPacket): ModelResult {
    this.advanceSync(input.timeUs);
    const w: Walk = {
      hops: [],
      outputs: [],
      fate: FATE_DROPPED,
      reason: REASON_NONE,
      detail: 0,
      ct: CT_NONE,
      instanceHops: 0,
      prefix: '',
      delivered: -1,
      hairpins: 0,
    };
    // A copy (a Buffer's slice() is a view: the walk would rewrite the caller's bytes).
    let pkt = new Uint8Array(input.frame);
    const pv = parse(pkt);
    const from = this.pointLabel(input.ingress);
    if (isIpLevelMalformation(pv.status)) {
      this.drop(
        w,
        DROP_MALFORMED,
        `${from}: parse`,
        pkt,
        `malformed IPv4 (${PARSE_STATUS_NAMES[pv.status]}): Linux drops it in ip_rcv`,
        pv.status,
      );
      return this.result(w);
    }
    if (pkt.length > pv.totalLen) pkt = pkt.slice(0, pv.totalLen); // link-layer padding is not part of the packet
    if (input.ingress === POINT_INTERNET) {
      this.hop(w, 'internet → IGW', pkt, `sent from the internet by ${formatIpv4(pv.src)}`);
      this.igwInbound(pkt, w);
    } else {
      const idx = input.ingress - 1;
      if (idx < 0 || idx >= this.scenario.instances.length) {
        this.drop(w, DROP_NO_INGRESS, `point ${input.ingress}`, pkt, `no instance at ingress point ${input.ingress}`);
        return this.result(w);
      }
      if (isStopped(this.scenario, idx)) {
        const name = this.scenario.instances[idx].name;
        this.drop(w, DROP_INSTANCE_STOPPED, `instance ${name}`, pkt, `${name} is stopped: it sends nothing`);
        return this.result(w);
      }
      this.sendFrom(idx, pkt, w, `sent by ${this.instanceKind(idx)} ${this.scenario.instances[idx].name}`);
    }
    return this.result(w);
  }

  // --- the path ----------------------------------------------------------------------------------

  private result(w: Walk): ModelResult {
    return {
      fate: w.fate,
      reason: w.reason,
      detail: w.detail,
      ct: w.ct,
      outputs: w.outputs,
      hops: w.hops,
      delivered: w.delivered,
    };
  }

  private hop(w: Walk, name: string, pkt: Uint8Array, note: string): void {
    w.hops.push({ name: w.prefix + name, packet: this.recordHopPackets ? pkt.slice() : EMPTY, note });
  }

  private drop(w: Walk, reason: number, name: string, pkt: Uint8Array, note: string, detail = 0): void {
    w.hops.push({
      name: w.prefix + name,
      packet: this.recordHopPackets ? pkt.slice() : EMPTY,
      note: `DROP ${reasonName(reason)}: ${note}`,
      drop: reason,
    });
    if (w.prefix) return; // a generated packet's fate does not change the input's
    w.fate = FATE_DROPPED;
    w.reason = reason;
    w.detail = detail;
  }

  /** `frame`: the output when it is not the packet as the last hop shows it (a local delivery). */
  private deliver(w: Walk, egress: number, name: string, pkt: Uint8Array, note: string, frame = pkt): void {
    w.hops.push({ name: w.prefix + name, packet: this.recordHopPackets ? pkt.slice() : EMPTY, note, egress });
    w.outputs.push({ egress, frame: frame.slice() });
    if (w.prefix) return;
    w.delivered = w.outputs.length - 1;
    w.fate = FATE_DELIVERED;
    w.reason = REASON_NONE;
    w.detail = 0;
  }

  private pointLabel(point: number): string {
    if (point === POINT_INTERNET) return 'internet';
    const inst = this.scenario.instances[point - 1];
    return inst ? `instance ${inst.name}` : `point ${point}`;
  }

  private instanceKind(i: number): string {
    return this.scenario.instances[i].nat ? 'NAT instance' : 'instance';
  }

  /** Step 2 + 3: the packet leaves instance S by its ENI and the VPC router routes it. */
  private sendFrom(s: number, pkt: Uint8Array, w: Walk, why: string, showEni = true): void {
    const S = this.scenario.instances[s];
    const pv = parse(pkt);
    const eniName = `${this.instanceKind(s)} ${S.name} → ENI`;
    if (S.sourceDestCheck && pv.src !== S.privateIp) {
      this.drop(
        w,
        DROP_SRC_DST_CHECK_SRC,
        eniName,
        pkt,
        `source/dest check is on and the source ${formatIpv4(pv.src)} is not ${S.name}'s address ${formatIpv4(S.privateIp)}`,
      );
      return;
    }
    if (showEni)
      this.hop(
        w,
        eniName,
        pkt,
        `${why}; source/dest check ${S.sourceDestCheck ? 'on: the source is its own address' : 'off'}`,
      );
    // Multicast and limited broadcast never reach the ENI's security groups: the VPC carries
    // neither, so the router drops them untracked (no allowance used; semantics §2 step 3).
    if (!isMulticastOrBroadcast(pv.dst) && !this.sgCheck(s, SG_OUT, pkt, w)) return;
    this.route(S.subnet, pkt, w);
  }

  /** Step 3: the VPC router routes a packet sent from subnet `sn` (the route table of the subnet). */
  private route(sn: number, pkt: Uint8Array, w: Walk): void {
    const pv = parse(pkt);
    // VPC router: the route table of the sender's subnet, longest prefix wins; never changes a byte.
    const subnet = this.scenario.subnets[sn];
    const rtb = this.scenario.routeTables[subnet.routeTable];
    const routerName = `VPC router (rtb ${rtb.name})`;
    if (isMulticastOrBroadcast(pv.dst)) {
      this.drop(
        w,
        DROP_MULTICAST,
        routerName,
        pkt,
        `${formatIpv4(pv.dst)} is a ${pv.dst >>> 0 === 0xffffffff ? 'limited broadcast' : 'multicast'} address: the VPC carries neither (no Transit Gateway multicast domain)`,
      );
      return;
    }
    const route = longestPrefix(rtb.routes, pv.dst);
    if (!route) {
      this.drop(w, DROP_NO_ROUTE, routerName, pkt, `no route to ${formatIpv4(pv.dst)} in route table ${rtb.name}`);
      return;
    }
    const rtext = `${formatIpv4(route.dest.addr)}/${route.dest.len} → ${this.routeTargetText(route)}`;
    switch (route.target) {
      case 'blackhole':
        this.drop(w, DROP_BLACKHOLE, routerName, pkt, `route ${rtext}`);
        return;
      case 'igw':
        this.hop(w, routerName, pkt, `route ${rtext}`);
        if (!this.aclCheck(sn, SG_OUT, pkt, w)) return;
        this.igwOutbound(pkt, w);
        return;
      case 'local': {
        const t = this.scenario.instances.findIndex((i) => i.privateIp === pv.dst);
        if (t < 0 && this.gatewayOf(pv.dst)) {
          const [g] = this.gatewayOf(pv.dst)!;
          this.hop(w, routerName, pkt, `route ${rtext}: ENI of NAT gateway ${this.gwSpec(g).name}`);
          if (!this.crossSubnets(sn, this.gwSpec(g).subnet, pkt, w)) return;
          this.arriveAtGateway(g, pkt, w);
          return;
        }
        if (t < 0) {
          this.drop(
            w,
            DROP_NO_HOST,
            routerName,
            pkt,
            `route ${rtext}, but no ENI in the VPC has ${formatIpv4(pv.dst)}`,
          );
          return;
        }
        this.hop(w, routerName, pkt, `route ${rtext}: ENI of ${this.scenario.instances[t].name}`);
        if (!this.crossSubnets(sn, this.scenario.instances[t].subnet, pkt, w)) return;
        this.arriveAt(t, pkt, w);
        return;
      }
      case 'eni':
        if (isStopped(this.scenario, route.instance)) {
          // AWS: a route whose target is not available is in state blackhole (Route.State).
          this.drop(
            w,
            DROP_BLACKHOLE,
            routerName,
            pkt,
            `route ${rtext}: ${this.scenario.instances[route.instance].name} is stopped, the route is a blackhole`,
          );
          return;
        }
        this.hop(w, routerName, pkt, `route ${rtext}`);
        if (!this.crossSubnets(sn, this.scenario.instances[route.instance].subnet, pkt, w)) return;
        this.arriveAt(route.instance, pkt, w);
        return;
      case 'nat-gateway':
        this.hop(w, routerName, pkt, `route ${rtext}`);
        if (!this.crossSubnets(sn, this.gwSpec(route.instance).subnet, pkt, w)) return;
        this.arriveAtGateway(route.instance, pkt, w);
        return;
    }
  }

  private gwSpec(g: number): NatGateway {
    return this.gateways[g].gw;
  }

  /** [gateway, address index] of the NAT gateway with private IP `ip`, or null. */
  private gatewayOf(ip: number): [number, number] | null {
    for (let g = 0; g < this.gateways.length; g++) {
      const k = this.gwSpec(g).addresses.findIndex((a) => a.privateIp === ip);
      if (k >= 0) return [g, k];
    }
    return null;
  }

  /** [gateway, address index] of the NAT gateway address with Elastic IP `eip`, or null. */
  private gatewayOfEip(eip: number): [number, number] | null {
    for (let g = 0; g < this.gateways.length; g++) {
      const k = this.gwSpec(g).addresses.findIndex((a) => a.elasticIp === eip);
      if (k >= 0) return [g, k];
    }
    return null;
  }

  /** A packet reaches NAT gateway g: translated (both directions) and routed on, or dropped. */
  private arriveAtGateway(g: number, pkt: Uint8Array, w: Walk): void {
    const G = this.gwSpec(g);
    const name = `NAT gateway ${G.name}`;
    w.instanceHops++;
    if (w.instanceHops > MAX_INSTANCE_HOPS) {
      this.drop(w, DROP_ROUTING_LOOP, name, pkt, `more than ${MAX_INSTANCE_HOPS} instance hops`);
      return;
    }
    const pv = parse(pkt);
    const own = G.addresses.findIndex((a) => a.privateIp === pv.dst);
    const gw = this.gateways[g];
    if (own >= 0) {
      const v = gw.inbound(pkt, pv, own, this.nowMs);
      if (v.reason !== REASON_NONE) return this.drop(w, v.reason, name, pkt, v.note);
      ipDecreaseTtl(pkt);
      this.hop(w, name, pkt, `${v.note}; ttl ${pv.ttl}→${pv.ttl - 1}`);
      this.route(G.subnet, pkt, w);
      return;
    }
    const src = pv.src;
    const v = gw.outbound(pkt, pv, this.nowMs);
    if (v.reason !== REASON_NONE) {
      this.drop(w, v.reason, name, pkt, v.note);
      if (v.reset && !w.prefix) this.sendReset(g, pv, w);
      return;
    }
    ipDecreaseTtl(pkt);
    this.hop(w, name, pkt, `${v.note} (from ${formatIpv4(src)}); ttl ${pv.ttl}→${pv.ttl - 1}`);
    this.route(G.subnet, pkt, w);
  }

  /** The RST NAT gateway g sends back to the source of a TCP packet of no connection (`pv`). */
  private sendReset(g: number, pv: PacketView, w: Walk): void {
    const rst = new Uint8Array(TCP_RESET_LEN);
    writeTcpReset(
      rst,
      0,
      pv.src,
      pv.dst,
      pv.sport,
      pv.dport,
      pv.tcpSeq,
      pv.tcpAck,
      pv.tcpFlags & ~F_RST,
      pv.payloadLen,
      DEFAULT_IP_TTL,
    );
    const sub: Walk = { ...w, prefix: 'RST: ', hops: w.hops, outputs: w.outputs };
    this.hop(sub, `NAT gateway ${this.gwSpec(g).name}`, rst, `reset to ${formatIpv4(pv.src)}:${pv.sport}`);
    this.route(this.gwSpec(g).subnet, rst, sub);
    w.instanceHops = sub.instanceHops;
    w.hairpins = sub.hairpins;
  }

  /** Network ACLs where a packet goes from subnet `from` to subnet `to`: none inside one subnet. */
  private crossSubnets(from: number, to: number, pkt: Uint8Array, w: Walk): boolean {
    if (from === to) return true;
    return this.aclCheck(from, SG_OUT, pkt, w) && this.aclCheck(to, SG_IN, pkt, w);
  }

  /** The network ACL of `subnet` for a packet leaving (SG_OUT) or entering (SG_IN) it. */
  private aclCheck(subnet: number, dir: number, pkt: Uint8Array, w: Walk): boolean {
    const acl = this.acls[subnet];
    if (!acl) return true;
    const v = evaluateAcl(acl, dir, filterFacts(parse(pkt)));
    const name = `network ACL ${acl.name} (${dir === SG_IN ? 'inbound to' : 'outbound from'} subnet ${this.scenario.subnets[subnet].name})`;
    if (v.allow) {
      this.hop(w, name, pkt, v.text);
      return true;
    }
    this.drop(w, DROP_NACL_DENY, name, pkt, `${v.text} (network ACLs are stateless)`);
    return false;
  }

  /** The security groups of instance i's ENI for a packet entering (SG_IN) or leaving (SG_OUT) it. */
  private sgCheck(i: number, dir: number, pkt: Uint8Array, w: Walk): boolean {
    const sg = this.security[i];
    if (!sg) return true;
    const v = sg.check(dir, filterFacts(parse(pkt)), this.nowMs);
    const name = `security groups ${this.scenario.instances[i].name} (${dir === SG_IN ? 'inbound' : 'outbound'})`;
    if (v.drop === '') {
      this.hop(w, name, pkt, v.note);
      return true;
    }
    this.drop(w, v.drop === 'deny' ? DROP_SG_DENY : DROP_SG_ALLOWANCE, name, pkt, v.note);
    return false;
  }

  private routeTargetText(r: Route): string {
    if (r.target === 'nat-gateway') return `nat-gateway:${this.gateways[r.instance]?.gw.name ?? r.instance}`;
    return r.target === 'eni' ? `eni:${this.scenario.instances[r.instance]?.name ?? r.instance}` : r.target;
  }

  /** Step 4: IGW outbound, private source → Elastic IP. */
  private igwOutbound(pkt: Uint8Array, w: Walk): void {
    const pv = parse(pkt);
    let owner: { name: string; privateIp: number; elasticIp: number | null } | undefined = this.scenario.instances.find(
      (i) => i.privateIp === pv.src && i.elasticIp !== null,
    );
    const gwOwner = owner ? null : this.gatewayOf(pv.src);
    if (gwOwner) {
      const a = this.gwSpec(gwOwner[0]).addresses[gwOwner[1]];
      owner = { name: `NAT gateway ${this.gwSpec(gwOwner[0]).name}`, privateIp: a.privateIp, elasticIp: a.elasticIp };
    }
    if (!owner || owner.elasticIp === null) {
      this.drop(w, DROP_IGW_NO_PUBLIC_IP, 'IGW static NAT', pkt, `the source ${formatIpv4(pv.src)} has no Elastic IP`);
      return;
    }
    igwRewrite(pkt, pv, 'src', owner.privateIp, owner.elasticIp);
    this.hop(
      w,
      'IGW static NAT',
      pkt,
      `${formatIpv4(owner.privateIp)}→${formatIpv4(owner.elasticIp)} (${owner.name}'s Elastic IP)`,
    );
    if (
      w.hairpins < MAX_HAIRPINS &&
      (this.scenario.instances.some((i) => i.elasticIp === pv.dst) || this.gatewayOfEip(pv.dst) !== null)
    ) {
      // Addressed to one of the VPC's own Elastic IPs: the IGW sends it straight back in.
      w.hairpins++;
      this.igwInbound(pkt, w);
      return;
    }
    this.deliver(w, POINT_INTERNET, 'internet', pkt, `delivered to the internet (${formatIpv4(pv.dst)})`);
  }

  /** Step 7: IGW inbound, Elastic IP → private address, then the instance's ENI. */
  private igwInbound(pkt: Uint8Array, w: Walk): void {
    const pv = parse(pkt);
    const t = this.scenario.instances.findIndex((i) => i.elasticIp === pv.dst);
    const gwAt = t < 0 ? this.gatewayOfEip(pv.dst) : null;
    if (gwAt) {
      const a = this.gwSpec(gwAt[0]).addresses[gwAt[1]];
      igwRewrite(pkt, pv, 'dst', a.elasticIp as number, a.privateIp);
      this.hop(
        w,
        'IGW static NAT',
        pkt,
        `${formatIpv4(a.elasticIp as number)}→${formatIpv4(a.privateIp)} (NAT gateway ${this.gwSpec(gwAt[0]).name})`,
      );
      if (!this.aclCheck(this.gwSpec(gwAt[0]).subnet, SG_IN, pkt, w)) return;
      this.arriveAtGateway(gwAt[0], pkt, w);
      return;
    }
    if (t < 0) {
      this.drop(
        w,
        DROP_IGW_UNKNOWN_DST,
        'IGW static NAT',
        pkt,
        `${formatIpv4(pv.dst)} is not an Elastic IP of this VPC`,
      );
      return;
    }
    const T = this.scenario.instances[t];
    igwRewrite(pkt, pv, 'dst', T.elasticIp as number, T.privateIp);
    this.hop(w, 'IGW static NAT', pkt, `${formatIpv4(T.elasticIp as number)}→${formatIpv4(T.privateIp)} (${T.name})`);
    if (!this.aclCheck(T.subnet, SG_IN, pkt, w)) return;
    this.arriveAt(t, pkt, w);
  }

  /** Step 5 + 6: ENI ingress check of T, then T's stack. */
  private arriveAt(t: number, pkt: Uint8Array, w: Walk): void {
    const T = this.scenario.instances[t];
    const pv = parse(pkt);
    w.instanceHops++;
    if (w.instanceHops > MAX_INSTANCE_HOPS) {
      this.drop(w, DROP_ROUTING_LOOP, `ENI ${T.name}`, pkt, `more than ${MAX_INSTANCE_HOPS} instance hops`);
      return;
    }
    if (T.stopped) {
      this.drop(w, DROP_INSTANCE_STOPPED, `ENI ${T.name}`, pkt, `${T.name} is stopped: nothing receives the packet`);
      return;
    }
    if (T.sourceDestCheck && pv.dst !== T.privateIp) {
      this.drop(
        w,
        DROP_SRC_DST_CHECK_DST,
        `ENI ${T.name} (source/dest check)`,
        pkt,
        `source/dest check is on and the destination ${formatIpv4(pv.dst)} is not ${T.name}'s address ${formatIpv4(T.privateIp)}`,
      );
      return;
    }
    if (!this.sgCheck(t, SG_IN, pkt, w)) return;
    if (T.nat) this.natInstance(t, pkt, pv, w);
    else this.plainHost(t, pkt, pv, w);
  }

  /** Step 6 for an instance without netfilter NAT. */
  private plainHost(t: number, pkt: Uint8Array, pv: PacketView, w: Walk): void {
    const T = this.scenario.instances[t];
    const name = `instance ${T.name}`;
    if (pv.dst === T.privateIp) {
      // Arrival at the host's own address is the output, whatever its stack then does with it (its
      // own source would be a martian there): what reached the ENI, as the kernel oracle captures
      // it. Only a forwarding host's martian check decides a path (below).
      this.deliver(w, instancePoint(t), name, pkt, `delivered to ${T.name}`);
      return;
    }
    if (!T.sysctls.ipForward) {
      this.drop(w, DROP_IP_FORWARD_OFF, name, pkt, `not for ${T.name} and net.ipv4.ip_forward = 0`);
      return;
    }
    if (pv.src === T.privateIp) return this.martianSource(w, T, name, pkt);
    if (pv.ttl <= 1) {
      this.drop(
        w,
        DROP_TTL_EXCEEDED,
        name,
        pkt,
        `TTL ${pv.ttl} would expire: ICMP time exceeded sent to ${formatIpv4(pv.src)}`,
      );
      this.sendTimeExceeded(t, pkt, pv, w);
      return;
    }
    ipDecreaseTtl(pkt);
    this.hop(w, name, pkt, `forwarded (ip_forward = 1), ttl ${pv.ttl}→${pv.ttl - 1}`);
    this.sendFrom(t, pkt, w, `forwarded by ${T.name}`, false);
  }

  /** Step 6 for a NAT instance: Linux with conntrack and the nat table. */
  private natInstance(t: number, pkt: Uint8Array, pvIn: PacketView, w: Walk): void {
    const T = this.scenario.instances[t];
    const table = this.tables[t] as ConntrackTable;
    const label = `NAT instance ${T.name}`;

    const received = pkt.slice();
    // nf_defrag_ipv4 (PREROUTING, before conntrack) holds fragments for reassembly; natlab does
    // not reassemble, so a fragment never gets further than this (docs/semantics.md §2 step 6).
    if (pvIn.status === PARSE_FRAGMENT || pvIn.mf) {
      this.drop(
        w,
        DROP_FRAGMENT,
        `${label}: defrag`,
        pkt,
        'IPv4 fragment held for reassembly (nf_defrag_ipv4); natlab does not reassemble',
      );
      return;
    }
    // a. PREROUTING: conntrack, then DNAT.
    const ct = conntrackIn(table, pkt, pvIn, HOOK_PRE, this.nowMs);
    if (!w.prefix) w.ct = ct.ctinfo;
    const evicted = ct.evicted
      ? `; table full: early-dropped ${tupleText(ct.evicted.proto, ct.evicted.tuples[0])}`
      : '';
    if (!ct.accept) {
      this.drop(
        w,
        DROP_CT_TABLE_FULL,
        `${label}: conntrack`,
        pkt,
        `nf_conntrack: table full (max ${table.settings.max}), dropping packet`,
      );
      return;
    }
    const ctName = `${label}: conntrack ${CT_NAMES[ct.ctinfo]}`;
    const e = ct.entry;
    const ctNote = `${ct.note}${evicted}`;
    const isNew = e !== null && !e.confirmed;
    const fail = (reason: number, name: string, note: string): void => {
      if (isNew && e) e.dead = true; // an unconfirmed entry simply goes away with the packet
      this.drop(w, reason, name, pkt, note);
    };

    let preName = '';
    let preNote = '';
    if (e) {
      if (ct.ctinfo === CT_RELATED && pvIn.proto === PROTO_ICMP) {
        const x = icmpReplyTranslation(e, ct.dir, pkt, pvIn, MANIP_DST);
        if (x.result !== ICMP_XLATE_OK) {
          this.hop(w, ctName, pkt, ctNote);
          this.failXlate(x.result, label, fail);
          return;
        }
        if (x.changed) {
          preName = 'ICMP error translation';
          preNote = `PREROUTING (${e.srcNatBy || 'SNAT'} reversed): outer destination and quoted packet`;
        }
      } else {
        if (ct.ctinfo === CT_NEW && !e.dstNatDone) {
          const v = runChain(T.nat!, 'PREROUTING', rulePacketOf(pvIn, ETH0, ''));
          this.count(t, 'PREROUTING', v.counted, pvIn.totalLen);
          const range = v.target ? targetRange(v.target, T.privateIp) : nullBindingRange(e, MANIP_DST);
          natSetupInfo(table, e, range, MANIP_DST, this.rng);
          e.dstNatBy = v.target ? v.target.kind : 'null binding';
        }
        const before = endpointOf(pkt, 'dst');
        const m = natPacket(e, ct.dir, pkt, MANIP_DST);
        if (!m.ok) return fail(DROP_MALFORMED, `${label}: PREROUTING`, 'packet too short to rewrite');
        if (m.changed) {
          preName = ct.dir === DIR_REPLY ? `reverse ${e.srcNatBy}` : e.dstNatBy;
          preNote = `destination ${before}→${endpointOf(pkt, 'dst')}`;
        }
      }
    }

    // b. routing: local delivery?
    let pv = parse(pkt);
    if (pv.dst === T.privateIp) {
      this.hop(w, ctName, preName ? received : pkt, ctNote);
      if (preName) this.hop(w, preName, pkt, preNote);
      if (pv.src === T.privateIp) {
        if (isNew && e) e.dead = true;
        return this.martianSource(w, T, `${label}: routing`, pkt);
      }
      // mangle INPUT (empty), filter INPUT, then nat INPUT (SNAT), then confirm. A filter table
      // with nothing but ACCEPT policies still counts every packet in its policies.
      if (T.filter) {
        const v = this.filterHook(t, 'INPUT', pkt, ETH0, '', ct.ctinfo, w);
        if (v.verdict !== FILTER_ACCEPT) {
          fail(v.reason, `${label}: filter INPUT`, v.note);
          this.filterAnswer(t, pkt, v, e, ct.dir, w);
          return;
        }
      }
      // nat INPUT (NF_INET_LOCAL_IN, a SRC manip hook: nf_nat_inet_fn): a new connection runs the
      // chain — its SNAT rule, else nf_nat_alloc_null_binding: the packet's own source address, no
      // port range, so get_unique_tuple keeps the source port unless the reply tuple is taken and
      // then searches another (the kernel's nf_nat_edemux.sh; docs/semantics.md §2 step 6b).
      if (e && isNew && ct.ctinfo === CT_NEW && !e.srcNatDone) {
        const v = runChain(T.nat!, 'INPUT', rulePacketOf(pv, ETH0, ''));
        this.count(t, 'INPUT', v.counted, pv.totalLen);
        const range = v.target ? targetRange(v.target, T.privateIp) : nullBindingRange(e, MANIP_SRC);
        natSetupInfo(table, e, range, MANIP_SRC, this.rng);
        e.srcNatBy = v.target ? v.target.kind : 'null binding';
      }
      if (e && ct.ctinfo !== CT_RELATED) {
        const before = endpointOf(pkt, 'src');
        const m = natPacket(e, ct.dir, pkt, MANIP_SRC);
        if (m.changed && m.ok)
          this.hop(
            w,
            `nat INPUT ${ct.dir === DIR_REPLY ? `reverse ${e.dstNatBy}` : e.srcNatBy}`,
            pkt,
            `source ${before}→${endpointOf(pkt, 'src')}`,
          );
      }
      if (e && isNew && !table.confirm(e))
        return fail(DROP_NAT_CLASH, `${label}: conntrack confirm`, 'the reply tuple is already in the table');
      // The output is the frame as it reached the ENI (an egress point is a wire; the kernel
      // engine captures it there): the hooks' rewrites show in the trace and the conntrack table.
      this.deliver(
        w,
        instancePoint(t),
        `${label}: local delivery`,
        pkt,
        `delivered to ${T.name}'s own stack`,
        received,
      );
      return;
    }

    // c. forwarding. (The hop(s) of PREROUTING show the packet after forwarding's TTL decrement.)
    const showPre = (extra: string): void => {
      this.hop(w, ctName, preName ? received : pkt, preName || !extra ? ctNote : `${ctNote}; ${extra}`);
      if (preName) this.hop(w, preName, pkt, extra ? `${preNote}; ${extra}` : preNote);
    };
    if (!T.sysctls.ipForward) {
      showPre('');
      return fail(DROP_IP_FORWARD_OFF, `${label}: forward`, `not for ${T.name} and net.ipv4.ip_forward = 0`);
    }
    if (pv.src === T.privateIp) {
      showPre('');
      if (isNew && e) e.dead = true;
      return this.martianSource(w, T, `${label}: routing`, pkt);
    }
    if (pv.ttl <= 1) {
      showPre('');
      fail(
        DROP_TTL_EXCEEDED,
        `${label}: forward`,
        `TTL ${pv.ttl} would expire: ICMP time exceeded sent to ${formatIpv4(pv.src)}`,
      );
      this.sendTimeExceeded(t, pkt, pv, w, e ? { entry: e, dir: ct.dir } : null);
      return;
    }
    ipDecreaseTtl(pkt);
    showPre(`forwarded, ttl ${pv.ttl}→${pv.ttl - 1}`);

    // c'. mangle FORWARD, filter FORWARD, then mangle POSTROUTING (before the nat table): TCPMSS.
    const mangleOn = mangleHasRules(T.mangle);
    for (const chain of MANGLE_CHAINS) {
      if (chain === 'POSTROUTING' && T.filter) {
        const v = this.filterHook(t, 'FORWARD', pkt, ETH0, ETH0, ct.ctinfo, w);
        if (v.verdict !== FILTER_ACCEPT) {
          fail(v.reason, `${label}: filter FORWARD`, v.note);
          this.filterAnswer(t, pkt, v, e, ct.dir, w);
          return;
        }
      }
      if (!mangleOn) continue;
      const m = runMangleChain(T.mangle as MangleTable, chain, pkt, chain === 'FORWARD' ? ETH0 : '', ETH0);
      if (m.drop) return fail(DROP_TCPMSS, `${label}: mangle ${chain}`, m.note);
      if (m.note) {
        pkt = m.pkt;
        this.hop(w, `mangle ${chain} TCPMSS`, pkt, m.note);
      }
    }

    // d. POSTROUTING: SNAT / MASQUERADE.
    pv = parse(pkt);
    if (e) {
      if (ct.ctinfo === CT_RELATED && pv.proto === PROTO_ICMP) {
        const x = icmpReplyTranslation(e, ct.dir, pkt, pv, MANIP_SRC);
        if (x.result !== ICMP_XLATE_OK) return this.failXlate(x.result, label, fail);
        if (x.changed)
          this.hop(
            w,
            'ICMP error translation',
            pkt,
            `POSTROUTING (${e.dstNatBy || 'DNAT'} reversed): outer source and quoted packet`,
          );
      } else {
        if (ct.ctinfo === CT_NEW && !e.srcNatDone) this.postroutingSetup(t, e, pv);
        const before = endpointOf(pkt, 'src');
        const m = natPacket(e, ct.dir, pkt, MANIP_SRC);
        if (!m.ok) return fail(DROP_MALFORMED, `${label}: POSTROUTING`, 'packet too short to rewrite');
        if (m.changed)
          this.hop(
            w,
            ct.dir === DIR_REPLY ? `reverse ${e.dstNatBy}` : e.srcNatBy,
            pkt,
            `source ${before}→${endpointOf(pkt, 'src')}`,
          );
      }
      // e. confirm.
      if (isNew && !table.confirm(e)) {
        return fail(
          DROP_NAT_CLASH,
          `${label}: conntrack confirm`,
          `reply tuple ${tupleText(e.proto, e.tuples[1])} is already in the table (no free port)`,
        );
      }
    }
    // f. leave by the ENI.
    this.sendFrom(t, pkt, w, `forwarded by ${T.name}`, false);
  }

  /**
   * ip_route_input_slow → fib_validate_source: the source is one of the receiving host's own
   * addresses and accept_local is 0 → martian source, dropped (before ip_forward's TTL check).
   * An unconfirmed entry goes with the packet; an existing one keeps what conntrack did.
   */
  private martianSource(w: Walk, T: Instance, name: string, pkt: Uint8Array): void {
    this.drop(
      w,
      DROP_MARTIAN_SOURCE,
      name,
      pkt,
      `martian source: ${formatIpv4(T.privateIp)} is ${T.name}'s own address (fib_validate_source, accept_local = 0)`,
    );
  }

  private failXlate(result: number, label: string, fail: (r: number, n: string, note: string) => void): void {
    if (result === ICMP_XLATE_BAD_CHECKSUM)
      fail(
        DROP_ICMP_BAD_CHECKSUM,
        `${label}: ICMP error translation`,
        'bad ICMP checksum (nf_nat_icmp_reply_translation)',
      );
    else if (result === ICMP_XLATE_REDIRECT)
      fail(DROP_ICMP_REDIRECT_NAT, `${label}: ICMP error translation`, 'ICMP redirect for a NATed connection');
    else fail(DROP_MALFORMED, `${label}: ICMP error translation`, 'quoted packet too short to rewrite');
  }

  /**
   * Runs filter chain `chain` of instance t on the packet (conntrack state `ctinfo`), counts, and
   * records a hop naming the rule (or policy) that decided. verdict FILTER_ACCEPT: go on.
   */
  private filterHook(
    t: number,
    chain: FilterChainName,
    pkt: Uint8Array,
    inDev: string,
    outDev: string,
    ctinfo: number,
    w: Walk,
  ): { verdict: number; reason: number; note: string; res: FilterResult } {
    const T = this.scenario.instances[t];
    const table = T.filter as FilterTable;
    const pv = parse(pkt);
    const res = runFilterChain(table, chain, {
      pkt,
      ihl: pv.ihl,
      totalLen: pv.totalLen,
      proto: pv.proto,
      src: pv.src,
      dst: pv.dst,
      fragOff: pv.fragOff,
      inDev,
      outDev,
      ctstate: ctstateBit(ctinfo),
    });
    const c = this.filterCells[t];
    if (c)
      for (const [ch, k] of res.counted) {
        const cell = k < 0 ? c[ch].policy : c[ch].rules[k];
        cell.packets++;
        cell.bytes += pv.totalLen;
      }
    const logged = res.logged.length ? `; LOG (counted) at ${res.logged.join(', ')}` : '';
    const state = `ctstate ${CT_NAMES[ctinfo] === 'none' ? 'INVALID' : CT_NAMES[ctinfo]}`;
    const where = filterWhere(table, res);
    if (res.verdict === FILTER_ACCEPT) {
      this.hop(w, `filter ${chain}`, pkt, `ACCEPT by ${where} (${state})${logged}`);
      return { verdict: FILTER_ACCEPT, reason: REASON_NONE, note: '', res };
    }
    if (res.verdict === FILTER_HOTDROP)
      return {
        verdict: res.verdict,
        reason: DROP_FILTER_DROP,
        note: `${where}: its match cannot read the L4 header (hotdrop)${logged}`,
        res,
      };
    if (res.verdict === FILTER_REJECT)
      return {
        verdict: res.verdict,
        reason: DROP_FILTER_REJECT,
        note: `REJECT --reject-with ${res.rejectWith} by ${where} (${state})${logged}`,
        res,
      };
    return { verdict: res.verdict, reason: DROP_FILTER_DROP, note: `DROP by ${where} (${state})${logged}`, res };
  }

  /** nat POSTROUTING for an entry whose source manip is not set up yet: the chain's rule or a null binding. */
  private postroutingSetup(t: number, e: CtEntry, pv: PacketView): void {
    const T = this.scenario.instances[t];
    const v = runChain(T.nat!, 'POSTROUTING', rulePacketOf(pv, '', ETH0));
    this.count(t, 'POSTROUTING', v.counted, pv.totalLen);
    let range = nullBindingRange(e, MANIP_SRC);
    e.srcNatBy = 'null binding';
    // nf_nat_masquerade_ipv4: an original source of 0.0.0.0 is left alone.
    if (v.target && !(v.target.kind === 'MASQUERADE' && e.tuples[0].src === 0)) {
      range = targetRange(v.target, T.privateIp);
      e.srcNatBy = v.target.kind;
    }
    natSetupInfo(this.tables[t] as ConntrackTable, e, range, MANIP_SRC, this.rng);
  }

  /** A REJECT's answer (ipt_REJECT reject_tg): an ICMP destination unreachable or a TCP reset. */
  private filterAnswer(
    t: number,
    pkt: Uint8Array,
    v: { verdict: number; res: FilterResult },
    e: CtEntry | null,
    dir: number,
    w: Walk,
  ): void {
    if (v.verdict !== FILTER_REJECT) return;
    const pv = parse(pkt);
    if (v.res.rejectWith === 'tcp-reset') {
      this.sendFilterReset(t, pkt, pv, e, dir, w);
      return;
    }
    // nf_send_unreach: not for a fragment; the L4 checksum must verify (UDP without one passes).
    if (pv.fragOff !== 0) return;
    if ((pv.proto === PROTO_TCP || pv.proto === PROTO_UDP || pv.proto === PROTO_ICMP) && !verifyL4Checksum(pkt, pv))
      return;
    const code = rejectCode(v.res.rejectWith);
    this.sendIcmpError(
      t,
      pkt,
      pv,
      w,
      ICMP_DEST_UNREACH,
      code,
      `destination unreachable (code ${code}, REJECT)`,
      e ? { entry: e, dir } : null,
    );
  }

  /**
   * nf_send_reset: the RST answering a TCP segment (not for an RST, a fragment or a bad checksum),
   * from its destination to its source, DF set, id 0, TTL 64. nf_ct_attach makes it RELATED to the
   * segment's connection in the other direction: no conntrack update, that direction's NAT applied.
   */
  private sendFilterReset(t: number, pkt: Uint8Array, pv: PacketView, e: CtEntry | null, dir: number, w: Walk): void {
    if (pv.fragOff !== 0 || pv.proto !== PROTO_TCP || pv.totalLen - pv.ihl < TCP_HEADER_MIN) return;
    const th = pv.ihl;
    const flags = pkt[th + 13];
    if (flags & F_RST) return;
    if (!verifyL4Checksum(pkt, pv)) return;
    const T = this.scenario.instances[t];
    const rst = new Uint8Array(TCP_RESET_LEN);
    const payloadLen = pv.totalLen - pv.ihl - ((pkt[th + 12] >>> 4) << 2);
    writeTcpReset(
      rst,
      0,
      pv.src,
      pv.dst,
      rd16(pkt, th),
      rd16(pkt, th + 2),
      rd32(pkt, th + 4),
      rd32(pkt, th + 8),
      flags,
      payloadLen,
      DEFAULT_IP_TTL,
    );
    rst[6] = 0x40; // nf_reject_iphdr_put: frag_off = IP_DF
    wr16(rst, 10, 0);
    wr16(rst, 10, ipv4HeaderChecksum(rst, 0, 20));
    const sub: Walk = { ...w, prefix: 'RST: ', hops: w.hops, outputs: w.outputs };
    const other = dir === DIR_REPLY ? DIR_ORIG : DIR_REPLY;
    if (e) natPacket(e, other, rst, MANIP_DST);
    if (!this.filterOutput(t, rst, e ? CT_RELATED : CT_INVALID, sub)) return;
    // nf_nat_inet_fn: a RELATED packet of an entry whose source manip is not set up yet (the
    // rejected packet's own, unconfirmed entry) runs the nat POSTROUTING chain itself.
    if (e && !e.srcNatDone) this.postroutingSetup(t, e, parse(rst));
    if (e) natPacket(e, other, rst, MANIP_SRC);
    this.hop(
      sub,
      `${this.instanceKind(t)} ${T.name}`,
      rst,
      `TCP reset (REJECT --reject-with tcp-reset) to ${endpointOf(rst, 'dst')}; conntrack ${e ? 'RELATED (attached to the connection)' : 'INVALID'}`,
    );
    this.sendFrom(t, rst, sub, 'generated by the instance');
    w.instanceHops = sub.instanceHops;
    w.hairpins = sub.hairpins;
  }

  /** filter OUTPUT of instance t for a packet it generates; false: dropped (a hop says why). */
  private filterOutput(t: number, pkt: Uint8Array, ctinfo: number, w: Walk): boolean {
    if (!this.scenario.instances[t].filter) return true;
    const v = this.filterHook(t, 'OUTPUT', pkt, '', ETH0, ctinfo, w);
    if (v.verdict === FILTER_ACCEPT) return true;
    // A generated packet is not answered again (REJECT in OUTPUT drops it here).
    this.hop(w, `${this.instanceKind(t)} ${this.scenario.instances[t].name}: filter OUTPUT`, pkt, `dropped: ${v.note}`);
    return false;
  }

  private count(t: number, chain: NatChainName, counted: number[], bytes: number): void {
    const c = this.counters[t]?.[chain];
    if (!c) return;
    for (const k of counted) {
      const cell = k < 0 ? c.policy : c.rules[k];
      cell.packets++;
      cell.bytes += bytes;
    }
  }

  /**
   * ip_forward → icmp_send(ICMP_TIME_EXCEEDED): from T's address to the packet's source as
   * received (post-DNAT), quoting it as received, as much as fits in 576 bytes. The error is a
   * locally generated packet: conntrack at OUTPUT (RELATED if it quotes a known connection, and
   * then translated at LOCAL_OUT and POSTROUTING), then it leaves by T's ENI.
   */
  private sendTimeExceeded(t: number, pkt: Uint8Array, pv: PacketView, w: Walk, trigger: TriggerCt = null): void {
    this.sendIcmpError(t, pkt, pv, w, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, 'time exceeded', trigger);
  }

  /**
   * icmp_send(type, code) from instance t about `pkt` as it is now; `what` names it in the hop.
   * See sendTimeExceeded for the path the error takes.
   */
  private sendIcmpError(
    t: number,
    pkt: Uint8Array,
    pv: PacketView,
    w: Walk,
    type: number,
    code: number,
    what: string,
    trigger: TriggerCt = null,
  ): void {
    if (pv.fragOff !== 0) return; // icmp_send: "Only reply to fragment 0"
    if (pv.proto === PROTO_ICMP) {
      // RFC 1122 3.2.2: never an ICMP error about an ICMP error (unknown types count as errors).
      if (pv.l4Len < 1) return;
      const type = pkt[pv.l4Off];
      if (type > 18 || isIcmpErrorType(type)) return;
    }
    const T = this.scenario.instances[t];
    // __icmp_send: icmp_ratemask, icmp_msgs_per_sec/burst, icmp_ratelimit per destination (§6).
    const limited = this.icmpLimits[t].allow(type, code, pv.src, this.nowMs);
    if (limited !== null) {
      this.hop(
        w,
        `${this.instanceKind(t)} ${T.name}`,
        pkt,
        `${what} to ${formatIpv4(pv.src)} not sent: ${limited === 'global' ? 'icmp_msgs_per_sec/icmp_msgs_burst (the instance-wide limit)' : 'icmp_ratelimit (the per-destination limit)'}`,
      );
      return;
    }
    const quoteLen = Math.min(pkt.length, ICMP_ERROR_MAX_LEN - 20 - 8);
    const err = buildIcmpError({
      src: T.privateIp,
      dst: pv.src,
      type,
      code,
      quoted: pkt,
      quoteLen,
      ttl: DEFAULT_IP_TTL,
      ipId: 0,
    });
    err[1] = (pv.tos & 0x1e) | 0xc0; // RT_TOS(tos) | IPTOS_PREC_INTERNETCONTROL
    err[6] &= 0x1f; // DF clear
    wr16(err, 10, 0);
    wr16(err, 10, ipv4HeaderChecksum(err, 0, 20));
    const sub: Walk = { ...w, prefix: 'ICMP error: ', hops: w.hops, outputs: w.outputs };
    const table = this.tables[t];
    let note = `${what} from ${T.name} (${formatIpv4(T.privateIp)}) to ${formatIpv4(pv.src)}`;
    if (table) {
      const epv = parse(err);
      // icmp_send attaches the triggering packet's entry to the error (icmp_glue_bits →
      // nf_ct_attach), confirmed or not — RELATED in the other direction — so a first packet's
      // DNAT is undone in the quote too; only a trigger without one (INVALID) is looked up.
      const ct: CtResult = trigger
        ? {
            accept: true,
            entry: trigger.entry,
            dir: trigger.dir === DIR_REPLY ? DIR_ORIG : DIR_REPLY,
            ctinfo: CT_RELATED,
            note: 'attached to the packet it answers',
            evicted: null,
          }
        : conntrackIn(table, err, epv, HOOK_OUT, this.nowMs);
      // LOCAL_OUT: conntrack, nat (the DST manip), filter OUTPUT; POSTROUTING: nat (the SRC manip).
      if (ct.entry) {
        const x = icmpReplyTranslation(ct.entry, ct.dir, err, parse(err), MANIP_DST);
        if (x.result !== ICMP_XLATE_OK) return;
      }
      if (!this.filterOutput(t, err, ct.entry ? CT_RELATED : CT_INVALID, sub)) return;
      if (ct.entry) {
        const x = icmpReplyTranslation(ct.entry, ct.dir, err, parse(err), MANIP_SRC);
        if (x.result !== ICMP_XLATE_OK) return;
        note += `; conntrack RELATED (${ct.note}): translated`;
      } else {
        note += `; conntrack ${CT_NAMES[CT_INVALID]} (${ct.note}): not translated`;
      }
    }
    this.hop(sub, `${this.instanceKind(t)} ${T.name}`, err, note);
    this.sendFrom(t, err, sub, 'generated by the instance');
    w.instanceHops = sub.instanceHops;
    w.hairpins = sub.hairpins;
  }
}

/** The conntrack entry of the packet an ICMP error answers, and that packet's direction (nf_ct_attach). */
type TriggerCt = { entry: CtEntry; dir: number } | null;

/** A TCP header without options (what nf_reject_ip_tcphdr_get needs to read). */
const TCP_HEADER_MIN = 20;

/** `10.0.1.10:40000` (ICMP query: `10.0.1.10 id 7`) — one side of the packet as it is now. */
function endpointOf(pkt: Uint8Array, side: 'src' | 'dst'): string {
  const pv = parse(pkt);
  const a = formatIpv4(side === 'src' ? pv.src : pv.dst);
  if (pv.proto === PROTO_TCP || pv.proto === PROTO_UDP) return `${a}:${side === 'src' ? pv.sport : pv.dport}`;
  if (pv.proto === PROTO_ICMP && !pv.isIcmpError && pv.status === PARSE_OK) return `${a} id ${pv.icmpId}`;
  return a;
}

function longestPrefix(routes: readonly Route[], dst: number): Route | null {
  let best: Route | null = null;
  for (const r of routes) {
    const m = r.dest.len === 0 ? 0 : (0xffffffff << (32 - r.dest.len)) >>> 0;
    if ((dst & m) >>> 0 !== r.dest.addr) continue;
    if (!best || r.dest.len > best.dest.len) best = r;
  }
  return best;
}

/**
 * The IGW's 1:1 static NAT of one address (docs/semantics.md §2 steps 4 and 7): the outer source
 * (outbound) or destination (inbound) with the IP checksum and the TCP/UDP pseudo-header checksum
 * patched incrementally (UDP 0 stays 0); for an ICMP error also the quoted packet's opposite
 * address when it is the translated one (inner IP checksum; inner UDP checksum if non-zero, inner
 * TCP checksum when its 20-byte header is quoted), the ICMP checksum patched incrementally for
 * every quoted word that changed — so a wrong checksum stays wrong by the same amount.
 */
export function igwRewrite(pkt: Uint8Array, pv: PacketView, which: 'src' | 'dst', from: number, to: number): void {
  const off = which === 'src' ? 12 : 16;
  const old = rd32(pkt, off);
  wr16(pkt, 10, csumReplace32(rd16(pkt, 10), old, to));
  wr32(pkt, off, to);
  if (pv.status === PARSE_FRAGMENT) return; // a non-first fragment carries no L4 header
  if (pv.proto === PROTO_TCP && pv.l4Len >= 18) {
    wr16(pkt, pv.l4Off + 16, csumReplace32(rd16(pkt, pv.l4Off + 16), old, to));
  } else if (pv.proto === PROTO_UDP && pv.l4Len >= 8) {
    wr16(pkt, pv.l4Off + 6, udpCsumReplace32(rd16(pkt, pv.l4Off + 6), old, to));
  } else if (pv.proto === PROTO_ICMP && pv.isIcmpError && pv.status === PARSE_OK) {
    // The quoted packet travelled the other way: its destination (outbound) / source (inbound).
    const io = pv.innerOff;
    const innerAddr = io + (which === 'src' ? 16 : 12);
    if (rd32(pkt, innerAddr) !== from) return;
    let icmp = rd16(pkt, pv.l4Off + 2);
    const oldInnerIpCsum = rd16(pkt, io + 10);
    wr16(pkt, io + 10, csumReplace32(oldInnerIpCsum, from, to));
    wr32(pkt, innerAddr, to);
    icmp = csumReplace32(icmp, from, to);
    icmp = csumReplace16(icmp, oldInnerIpCsum, rd16(pkt, io + 10));
    const il4 = pv.innerL4Off;
    const csumOff =
      pv.innerProto === PROTO_TCP && pv.innerL4Len >= 20 ? il4 + 16 : pv.innerProto === PROTO_UDP ? il4 + 6 : -1;
    if (csumOff >= 0) {
      const before = rd16(pkt, csumOff);
      wr16(
        pkt,
        csumOff,
        pv.innerProto === PROTO_UDP ? udpCsumReplace32(before, from, to) : csumReplace32(before, from, to),
      );
      icmp = csumReplace16(icmp, before, rd16(pkt, csumOff));
    }
    wr16(pkt, pv.l4Off + 2, icmp);
  }
}

function toConntrackEntry(e: CtEntry, instance: number, nowMs: number): ConntrackEntry {
  return {
    instance,
    proto: e.proto,
    state: e.proto === PROTO_TCP ? TCP_STATE_NAMES[e.tcp.state] : '',
    timeout: Math.floor((e.expiresMs - nowMs) / 1000),
    orig: { ...e.tuples[0] },
    reply: { ...e.tuples[1] },
    assured: e.assured,
    seenReply: e.seenReply,
  };
}

/** The model engine (docs/model.md). */
export function createModelEngine(scenario: Scenario, opts: ModelEngineOptions = {}): ModelEngine {
  return new ModelEngine(scenario, opts);
}

/** The model as the differential runner sees it (diff/engines.ts). */
export const modelEngineDescriptor: EngineDescriptor = {
  name: 'model',
  summary: 'the reference simulator: obviously right, one packet at a time',
  realClock: false,
  randomChoices: false,
  modelPortChoices: 'always',
  awsFilters: true,
  fuzzFilterTables: true,
  create: (scenario, opts) => createModelEngine(scenario, opts),
};

export type { Instance };
