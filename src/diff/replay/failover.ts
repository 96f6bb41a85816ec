// The failover report of a replay whose scenario has a timeline (docs/replay.md "Failover report"):
// per event and engine, which flows broke and how (a silent drop and its reason, INVALID, an RST, a
// reply that met the NAT instance itself, the public address/port changed), and how long each
// direction was without a path — from the flow's last good packet before the event to its first
// good one after. Fed record by record in input order (cold: only with a timeline).

import { formatIpv4 } from '../../packet/addr.ts';
import { F_RST, PROTO_TCP, PROTO_UDP } from '../../packet/constants.ts';
import { PacketView, parseIpv4 } from '../../packet/parse.ts';
import type { PacketResult } from '../../spec/engine.ts';
import { CT_INVALID, FATE_DELIVERED, reasonName } from '../../spec/reasons.ts';
import { POINT_INTERNET } from '../../spec/scenario.ts';
import type { TimelineEvent } from '../../spec/timeline.ts';

/** Flows listed per event and engine (the counts cover all). */
export const FAILOVER_MAX_FLOWS = 20;

export const DIR_OUT = 0;
export const DIR_IN = 1;

/** How a flow fared across an event, per engine. */
export interface FailoverFlow {
  /** `tcp 10.0.1.10:40000 ⇄ 198.51.100.7:443`. */
  flow: string;
  /** 'survived', or what broke it first (see FailoverEngineReport.broken). */
  how: string;
  /** Seconds without a path, per direction: last good packet before the event → first good after (null: none after; no data: absent). */
  outboundGapS: number | null;
  inboundGapS: number | null;
  /** The public address:port before and after (outbound, when it changed). */
  mappingBefore?: string;
  mappingAfter?: string;
}

export interface FailoverEngineReport {
  engine: string;
  /** Flows with a packet before the event and one after it (before the next event). */
  flows: number;
  survived: number;
  /** Broken flows by how: 'drop: blackhole', 'INVALID', 'RST', 'reply met the NAT instance itself', 'mapping changed'. */
  broken: Record<string, number>;
  /** Longest gap (s) among the broken flows that got a path back, per direction. */
  maxOutboundGapS: number | null;
  maxInboundGapS: number | null;
  /** Broken flows that never got a path back in a direction they used after the event. */
  neverRecovered: number;
  /** The broken flows first (longest gap first), then survivors; at most FAILOVER_MAX_FLOWS. */
  examples: FailoverFlow[];
}

export interface FailoverEventReport {
  event: string;
  /** Seconds after the first packet. */
  atS: number;
  engines: FailoverEngineReport[];
}

export interface FailoverReport {
  events: FailoverEventReport[];
}

/** One direction of a flow across one event. */
interface DirState {
  /** Last good packet's time (µs) before the event, -1 none. */
  lastGoodBefore: number;
  /** First good packet's time after it, -1 none yet. */
  firstGoodAfter: number;
  /** Packets after the event. */
  seenAfter: number;
  /** The first problem after the event, before the first good packet ('' none). */
  problem: string;
}

/** A flow across one event: opened by its first packet at or after the event. */
interface Across {
  dirs: [DirState, DirState];
  mappingBefore: string;
  mappingAfter: string;
}

interface FlowState {
  key: string;
  lastGood: [number, number];
  /** Public address:port of the last good outbound packet. */
  mapping: string;
  /** Per event: its state once the flow had a packet at or after it (null before). */
  across: Array<Across | null>;
}

function dir(lastGoodBefore: number): DirState {
  return { lastGoodBefore, firstGoodAfter: -1, seenAfter: 0, problem: '' };
}

/** Collects per-record results of every engine and folds them into per-event reports. */
export class FailoverCollector {
  private readonly flows: Array<Map<string, FlowState>>;
  private readonly pv = new PacketView();
  private t0 = -1;
  private times: readonly number[] = [];

  constructor(
    private readonly events: readonly TimelineEvent[],
    private readonly engines: readonly string[],
  ) {
    this.flows = engines.map(() => new Map());
  }

  /** The capture's first packet time and the events' capture times (TimelineCursor). */
  start(firstPacketUs: number, eventTimesUs: readonly number[]): void {
    if (this.t0 >= 0) return;
    this.t0 = firstPacketUs;
    this.times = eventTimesUs;
  }

  /**
   * One record's result on engine e: flow key parts (proto, inside address and port, remote
   * address and port), its direction (DIR_OUT from the inside), its time.
   */
  observe(
    e: number,
    proto: number,
    inside: number,
    insidePort: number,
    remote: number,
    remotePort: number,
    direction: number,
    timeUs: number,
    r: PacketResult,
  ): void {
    if (this.t0 < 0) return;
    const key = `${proto}|${inside}|${insidePort}|${remote}|${remotePort}`;
    const map = this.flows[e];
    let f = map.get(key);
    if (!f) {
      f = {
        key: flowText(proto, inside, insidePort, remote, remotePort),
        lastGood: [-1, -1],
        mapping: '',
        across: this.events.map(() => null),
      };
      map.set(key, f);
    }
    const v = this.verdict(r, direction, inside);
    for (let k = 0; k < this.times.length && this.times[k] <= timeUs; k++) {
      let a = f.across[k];
      if (a === null) {
        a = { dirs: [dir(f.lastGood[DIR_OUT]), dir(f.lastGood[DIR_IN])], mappingBefore: f.mapping, mappingAfter: '' };
        f.across[k] = a;
      }
      const d = a.dirs[direction];
      d.seenAfter++;
      if (d.firstGoodAfter >= 0) continue;
      if (v.good) {
        d.firstGoodAfter = timeUs;
        if (direction === DIR_OUT) a.mappingAfter = v.mapping;
      } else if (d.problem === '') d.problem = v.problem;
    }
    if (v.good) {
      f.lastGood[direction] = timeUs;
      if (direction === DIR_OUT) f.mapping = v.mapping;
    }
  }

  /** Whether a result is a good packet of its direction, else what went wrong. */
  private verdict(
    r: PacketResult,
    direction: number,
    inside: number,
  ): { good: boolean; mapping: string; problem: string } {
    const pv = this.pv;
    if (r.ct === CT_INVALID) return { good: false, mapping: '', problem: 'INVALID' };
    for (const o of r.outputs) {
      if (parseIpv4(o.frame, 0, o.frame.length, pv) !== 0) continue;
      if (pv.proto === PROTO_TCP && (pv.tcpFlags & F_RST) !== 0 && r.fate !== FATE_DELIVERED)
        return { good: false, mapping: '', problem: 'RST' };
    }
    if (r.fate !== FATE_DELIVERED) return { good: false, mapping: '', problem: `drop: ${reasonName(r.reason)}` };
    const o = r.outputs[r.outputs.length - 1];
    if (!o || parseIpv4(o.frame, 0, o.frame.length, pv) !== 0)
      return { good: false, mapping: '', problem: 'no output' };
    if (direction === DIR_OUT) {
      if (o.egress !== POINT_INTERNET) return { good: false, mapping: '', problem: 'not to the internet' };
      const port = pv.proto === PROTO_TCP || pv.proto === PROTO_UDP ? `:${pv.sport}` : '';
      return { good: true, mapping: `${formatIpv4(pv.src)}${port}`, problem: '' };
    }
    if (pv.dst !== inside) return { good: false, mapping: '', problem: 'reply met the NAT instance itself' };
    return { good: true, mapping: '', problem: '' };
  }

  /** Flow f across event k (null: no packet before it or none after). */
  private summary(f: FlowState, k: number): FailoverFlow | null {
    const a = f.across[k];
    if (a === null) return null;
    const [o, i] = a.dirs;
    if (o.lastGoodBefore < 0 && i.lastGoodBefore < 0) return null;
    const gap = (d: DirState): number | null | undefined => {
      if (d.seenAfter === 0 || d.lastGoodBefore < 0) return undefined;
      return d.firstGoodAfter < 0 ? null : (d.firstGoodAfter - d.lastGoodBefore) / 1e6;
    };
    const changed = a.mappingBefore !== '' && a.mappingAfter !== '' && a.mappingAfter !== a.mappingBefore;
    let how = o.problem || i.problem;
    if (how === '' && changed) how = 'mapping changed';
    const x: FailoverFlow = { flow: f.key, how: how || 'survived', outboundGapS: null, inboundGapS: null };
    const go = gap(o);
    const gi = gap(i);
    if (go === undefined) delete (x as Partial<FailoverFlow>).outboundGapS;
    else x.outboundGapS = go;
    if (gi === undefined) delete (x as Partial<FailoverFlow>).inboundGapS;
    else x.inboundGapS = gi;
    if (changed) {
      x.mappingBefore = a.mappingBefore;
      x.mappingAfter = a.mappingAfter;
    }
    return x;
  }

  /** The report. */
  finish(): FailoverReport {
    return {
      events: this.events.map((ev, k) => ({
        event: ev.text,
        atS: this.t0 < 0 ? ev.at : Math.round((this.times[k] - this.t0) / 1000) / 1000,
        engines: this.engines.map((name, e) => {
          const flows: FailoverFlow[] = [];
          for (const f of this.flows[e].values()) {
            const x = this.summary(f, k);
            if (x) flows.push(x);
          }
          return summarise(name, flows);
        }),
      })),
    };
  }
}

function summarise(engine: string, flows: FailoverFlow[]): FailoverEngineReport {
  const broken: Record<string, number> = {};
  let survived = 0;
  let never = 0;
  let maxO: number | null = null;
  let maxI: number | null = null;
  for (const f of flows) {
    if (f.how === 'survived') {
      survived++;
      continue;
    }
    broken[f.how] = (broken[f.how] ?? 0) + 1;
    if (f.outboundGapS === null || f.inboundGapS === null) never++;
    if (typeof f.outboundGapS === 'number') maxO = Math.max(maxO ?? 0, f.outboundGapS);
    if (typeof f.inboundGapS === 'number') maxI = Math.max(maxI ?? 0, f.inboundGapS);
  }
  const worst = (f: FailoverFlow): number =>
    f.outboundGapS === null || f.inboundGapS === null ? Infinity : Math.max(f.outboundGapS ?? 0, f.inboundGapS ?? 0);
  const examples = [...flows]
    .sort((a, b) => Number(a.how === 'survived') - Number(b.how === 'survived') || worst(b) - worst(a))
    .slice(0, FAILOVER_MAX_FLOWS);
  return {
    engine,
    flows: flows.length,
    survived,
    broken,
    maxOutboundGapS: maxO,
    maxInboundGapS: maxI,
    neverRecovered: never,
    examples,
  };
}

function flowText(proto: number, inside: number, ip: number, remote: number, rp: number): string {
  const p = proto === PROTO_TCP ? 'tcp' : proto === PROTO_UDP ? 'udp' : proto === 1 ? 'icmp' : `proto ${proto}`;
  const port = (n: number): string => (proto === PROTO_TCP || proto === PROTO_UDP ? `:${n}` : '');
  return `${p} ${formatIpv4(inside)}${port(ip)} ⇄ ${formatIpv4(remote)}${port(rp)}`;
}

const gapText = (g: number | null | undefined): string =>
  g === undefined ? '-' : g === null ? 'none until the end of the capture' : `${g.toFixed(3)} s`;

/** The report as text lines (replay's summary). */
export function formatFailoverReport(r: FailoverReport): string {
  const lines: string[] = ['Failover report (scenario timeline):'];
  for (const ev of r.events) {
    lines.push(`  at ${ev.atS.toFixed(3)} s: ${ev.event}`);
    for (const e of ev.engines) {
      if (e.flows === 0) {
        lines.push(`    ${e.engine}: no flow had packets on both sides of the event`);
        continue;
      }
      const broken = Object.entries(e.broken)
        .sort((a, b) => b[1] - a[1])
        .map(([h, n]) => `${n} ${h}`)
        .join(', ');
      lines.push(
        `    ${e.engine}: ${e.flows} flow(s) across it: ${e.survived} survived${broken ? `, broken: ${broken}` : ''}` +
          (broken
            ? `; longest without a path: out ${gapText(e.maxOutboundGapS ?? undefined)}, in ${gapText(e.maxInboundGapS ?? undefined)}`
            : '') +
          (e.neverRecovered ? `; ${e.neverRecovered} never got a path back` : ''),
      );
      for (const f of e.examples) {
        const m = f.mappingBefore ? ` (public ${f.mappingBefore} → ${f.mappingAfter})` : '';
        const gaps = `out ${gapText(f.outboundGapS)}, in ${gapText(f.inboundGapS)}`;
        lines.push(
          f.how === 'survived'
            ? `      ${f.flow}: survived (packets across it: ${gaps} apart)`
            : `      ${f.flow}: ${f.how}${m}; without a path: ${gaps}`,
        );
      }
    }
  }
  return lines.join('\n');
}
