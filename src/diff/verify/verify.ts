// natlab verify: does a real NAT box behave like Linux with this config? The frames the box
// received (inside hosts sending, the internet answering) go through an engine, one at a time in
// capture-time order; every frame the engine predicts the box sends is paired with a frame the
// box really sent on that side — by flow (addresses, protocol, the remote port; the box's port
// choice learnt once per flow as a PortRenaming binding) and by content (what NAT never changes:
// TCP seq/ack/flags and payload, UDP payload, ICMP type/code/sequence), earliest first, within a
// time window — then compared byte for byte, field by field. Frames the internet sends to the
// box's ports are fed to the engine renamed into its own port choices (so its replies line up).
// Frames outside the time window both captures cover are reported, never counted. The rules and an
// example: docs/verify.md. Cold path.

import type { Engine, InputPacket } from '../../spec/engine.ts';
import { InputError } from '../../spec/errors.ts';
import {
  NF_NAT_RANGE_PROTO_RANDOM,
  NF_NAT_RANGE_PROTO_RANDOM_FULLY,
  POINT_INTERNET,
  instancePoint,
  pointInstance,
  type Cidr,
  type Scenario,
} from '../../spec/scenario.ts';
import { FATE_DELIVERED, reasonName } from '../../spec/reasons.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP, isIcmpQueryType } from '../../packet/constants.ts';
import { PARSE_OK, PacketView, parseIpv4 } from '../../packet/parse.ts';
import { cidrContains, formatIpv4 } from '../../packet/addr.ts';
import { describePacket } from '../../packet/format.ts';
import { buildCaptureScenario } from '../../scenario/capture.ts';
import { PortRenaming } from '../compare/compare.ts';
import { type FieldDiff, fieldDiffs, signatures } from './fields.ts';
import { SIDE_INSIDE, SIDE_NAMES, SIDE_OUTSIDE, type SideFrame, type Sides } from './sides.ts';

export const VERDICT_IDENTICAL = 'identical';
export const VERDICT_DIFFERS = 'differs';
export const VERDICT_NOT_SEEN = 'predicted-not-seen';
export const VERDICT_NOT_PREDICTED = 'seen-not-predicted';
export type VerdictKind = 'identical' | 'differs' | 'predicted-not-seen' | 'seen-not-predicted';

/** Where a frame is in the captures. */
export interface FrameRef {
  file: string;
  no: number;
  timeUs: number;
  text: string;
}

export interface PacketVerdict {
  kind: VerdictKind;
  side: 'inside' | 'outside';
  /** The input the prediction came from (absent for seen-not-predicted). */
  input?: FrameRef;
  /** The predicted frame, in the box's port space (absent for seen-not-predicted). */
  predicted?: string;
  /** The real frame (absent for predicted-not-seen). */
  real?: FrameRef;
  fields: FieldDiff[];
  /** Within the window both captures cover (outside it a verdict is reported, not counted). */
  inOverlap: boolean;
  /** For predicted-not-seen: what the engine said about the input (its verdict). */
  note?: string;
}

export interface Finding {
  /** What the box does that the scenario does not say. */
  what: string;
  /** The scenario change that would say it, or '' when natlab cannot model it. */
  suggestion: string;
  frames: number;
}

export interface SideCounts {
  frames: number;
  inputs: number;
  outputs: number;
  /** Frames neither to nor from the box (not used). */
  unrelated: number;
  /** Outside the overlap window. */
  outsideWindow: number;
}

export interface VerifyReport {
  engine: string;
  scenario: string;
  how: string;
  /** The box's outside address and the inside hosts. */
  publicAddr: string;
  insideHosts: string[];
  overlap: { fromUs: number; toUs: number };
  sides: { inside: SideCounts; outside: SideCounts };
  counts: Record<VerdictKind, number>;
  /** Counted verdicts outside the overlap window, by kind. */
  outsideWindow: Record<VerdictKind, number>;
  /** Inputs the engine delivered to the box itself (nothing to see on either side). */
  toTheBox: number;
  packets: PacketVerdict[];
  findings: Finding[];
  renamedFlows: number;
  flows: number;
  warnings: string[];
  skipped: Record<string, number>;
}

export interface VerifyOptions {
  sides: Sides;
  /** Inside networks (--inside); empty: inside hosts are the inside capture's addresses the outside never shows. */
  inside: Cidr[];
  /** A scenario of the user's (--scenario); null: built around the capture. */
  scenario: Scenario | null;
  /** The box's outside address (--public); default: found in the outside capture. */
  publicAddr?: number;
  engineName: string;
  makeEngine: (s: Scenario) => Promise<Engine>;
  /** How far (µs) a real frame may be from the input it answers (capture clocks, queues). */
  windowUs: number;
}

interface Real extends SideFrame {
  role: 'input' | 'output' | 'unrelated';
  matched: boolean;
  strong: string;
  weak: string;
}

const src = (f: Uint8Array): number => ((f[12] << 24) | (f[13] << 16) | (f[14] << 8) | f[15]) >>> 0;
const dst = (f: Uint8Array): number => ((f[16] << 24) | (f[17] << 16) | (f[18] << 8) | f[19]) >>> 0;

function describe(f: Uint8Array): string {
  try {
    return describePacket(f, 0, f.length);
  } catch {
    return `${f.length} bytes`;
  }
}

/** Address → count of outside frames it appears in. */
function findPublic(outside: SideFrame[], insideAddrs: Set<number>, given?: number): number {
  if (given !== undefined) return given;
  const n = new Map<number, number>();
  for (const f of outside) {
    if (f.frame.length < 20) continue;
    for (const a of new Set([src(f.frame), dst(f.frame)])) if (!insideAddrs.has(a)) n.set(a, (n.get(a) ?? 0) + 1);
  }
  const ranked = [...n.entries()].sort((x, y) => y[1] - x[1]);
  if (ranked.length === 0)
    throw new InputError(
      `cannot find the box's outside address: every outside address also appears on the inside (give --public ADDR)`,
      'outside',
    );
  if (ranked.length > 1 && ranked[1][1] === ranked[0][1])
    throw new InputError(
      `cannot tell the box's outside address: ${formatIpv4(ranked[0][0])} and ${formatIpv4(ranked[1][0])} appear in as many outside frames (${ranked[0][1]}) and neither on the inside (give --public ADDR)`,
      'outside',
    );
  return ranked[0][0];
}

/** The pairing key of an output frame: protocol and destination (which NAT never changes on this side). */
function looseKey(f: Uint8Array, pv: PacketView): string {
  if (parseIpv4(f, 0, f.length, pv) !== PARSE_OK) return `raw|${f.length >= 20 ? dst(f) : 0}`;
  if (pv.proto === PROTO_TCP || pv.proto === PROTO_UDP) return `${pv.proto}|${pv.dst}|${pv.dport}`;
  if (pv.proto === PROTO_ICMP) return pv.isIcmpError ? `icmperr|${pv.dst}` : `icmp|${pv.dst}|${pv.icmpType}`;
  return `${pv.proto}|${pv.dst}`;
}

/** looseKey plus the source address and port/id: one flow's frames. */
function exactKey(f: Uint8Array, pv: PacketView): string {
  const k = looseKey(f, pv);
  if (pv.status !== PARSE_OK) return k;
  if (pv.proto === PROTO_TCP || pv.proto === PROTO_UDP) return `${k}|${pv.src}|${pv.sport}`;
  if (pv.proto === PROTO_ICMP && !pv.isIcmpError) return `${k}|${pv.src}|${pv.icmpId}`;
  return `${k}|${pv.src}`;
}

/**
 * Real frames per side and key in time order. Inputs are fed in time order, so a per-key start
 * index skips frames paired or too old for every later input: the work per lookup is bounded by
 * the frames inside the window.
 */
class Pool {
  private readonly lists: [Map<string, Real[]>, Map<string, Real[]>] = [new Map(), new Map()];
  private readonly heads: [Map<string, number>, Map<string, number>] = [new Map(), new Map()];

  add(side: number, key: string, r: Real): void {
    const m = this.lists[side === SIDE_INSIDE ? 0 : 1];
    const l = m.get(key);
    if (l) l.push(r);
    else m.set(key, [r]);
  }

  /** Unpaired frames of the key with lo <= time <= hi (lo never decreases between calls). */
  within(side: number, key: string, lo: number, hi: number): Real[] {
    const s = side === SIDE_INSIDE ? 0 : 1;
    const l = this.lists[s].get(key);
    if (!l) return [];
    let h = this.heads[s].get(key) ?? 0;
    while (h < l.length && (l[h].matched || l[h].timeUs < lo)) h++;
    this.heads[s].set(key, h);
    const out: Real[] = [];
    for (let k = h; k < l.length && l[k].timeUs <= hi; k++) if (!l[k].matched) out.push(l[k]);
    return out;
  }
}

/** The translated endpoint of an outbound frame at the box's address: [proto, port, peer, peerPort], or null. */
function natEndpoint(f: Uint8Array, pv: PacketView, pub: number): [number, number, number, number] | null {
  if (parseIpv4(f, 0, f.length, pv) !== PARSE_OK || pv.src !== pub) return null;
  if (pv.proto === PROTO_TCP || pv.proto === PROTO_UDP) return [pv.proto, pv.sport, pv.dst, pv.dport];
  if (pv.proto === PROTO_ICMP && !pv.isIcmpError && isIcmpQueryType(pv.icmpType))
    return [PROTO_ICMP, pv.icmpId, pv.dst, 0];
  return null;
}

function zero(): Record<VerdictKind, number> {
  return { identical: 0, differs: 0, 'predicted-not-seen': 0, 'seen-not-predicted': 0 };
}

export async function runVerify(o: VerifyOptions): Promise<VerifyReport> {
  const [insideF, outsideF] = o.sides.frames;
  const warnings = [...o.sides.warnings];
  const pv = new PacketView();
  // Inside hosts: in --inside, or the inside capture's addresses the outside never shows.
  const outsideAddrs = new Set<number>();
  for (const f of outsideF) if (f.frame.length >= 20) outsideAddrs.add(src(f.frame)).add(dst(f.frame));
  const insideAddrs = new Set<number>();
  for (const f of insideF) if (f.frame.length >= 20) insideAddrs.add(src(f.frame)).add(dst(f.frame));
  const isInsideHost = (a: number): boolean =>
    o.inside.length > 0 ? o.inside.some((c) => cidrContains(c, a)) : insideAddrs.has(a) && !outsideAddrs.has(a);
  const hosts = [...insideAddrs].filter(isInsideHost).sort((x, y) => x - y);
  const pub = findPublic(outsideF, insideAddrs, o.publicAddr);
  if (hosts.length === 0)
    throw new InputError(
      `no inside host found: ${o.inside.length ? 'no inside frame has an address in --inside' : 'every address of the inside capture also appears outside (give --inside CIDRS)'}`,
      'inside',
    );

  // The scenario: the user's, or one built around the capture with the box's address as the NAT's.
  let scenario = o.scenario;
  if (!scenario) {
    const remote = new Set<number>();
    for (const f of [...insideF, ...outsideF]) {
      if (f.frame.length < 20) continue;
      for (const a of [src(f.frame), dst(f.frame)]) if (a !== pub && !isInsideHost(a)) remote.add(a);
    }
    scenario = buildCaptureScenario({
      name: 'verify',
      inside: o.inside.length ? o.inside : hosts.map((h) => ({ addr: h, len: 32 })),
      insideHosts: hosts,
      outsideHosts: [...remote],
      elasticIp: pub,
    });
  } else if (!scenario.instances.some((i) => i.elasticIp === pub)) {
    throw new InputError(
      `${scenario.source}: no instance has the box's outside address ${formatIpv4(pub)} as its Elastic IP (the NAT instance must, so predicted frames leave with it)`,
      scenario.source,
    );
  }
  const natIndex = scenario.instances.findIndex((i) => i.elasticIp === pub);
  const byPrivate = new Map(scenario.instances.map((i, k) => [i.privateIp >>> 0, k]));

  // Roles of the real frames.
  const reals: Real[] = [];
  const counts = { inside: emptySide(), outside: emptySide() };
  for (const f of [...insideF, ...outsideF]) {
    const sg = signatures(f.frame);
    let role: Real['role'] = 'unrelated';
    if (f.frame.length >= 20) {
      const s = src(f.frame);
      const d = dst(f.frame);
      if (f.side === SIDE_INSIDE) role = isInsideHost(s) ? 'input' : isInsideHost(d) ? 'output' : 'unrelated';
      else if (d === pub || (isInsideHost(d) && s !== pub)) role = 'input';
      else if (s === pub || isInsideHost(s)) role = 'output';
    }
    const c = f.side === SIDE_INSIDE ? counts.inside : counts.outside;
    c.frames++;
    if (role === 'input') c.inputs++;
    else if (role === 'output') c.outputs++;
    else c.unrelated++;
    reals.push({ ...f, role, matched: false, strong: sg.strong, weak: sg.weak });
  }
  // The window both captures cover.
  const span = (l: SideFrame[]): [number, number] => [
    Math.min(...l.map((f) => f.timeUs)),
    Math.max(...l.map((f) => f.timeUs)),
  ];
  const [i0, i1] = span(insideF);
  const [o0, o1] = span(outsideF);
  const from = Math.max(i0, o0);
  const to = Math.min(i1, o1);
  const inWindow = (t: number): boolean => t >= from - o.windowUs && t <= to + o.windowUs;
  for (const r of reals) {
    if (!inWindow(r.timeUs)) (r.side === SIDE_INSIDE ? counts.inside : counts.outside).outsideWindow++;
  }

  // Pools of the box's outputs per side and pairing key, in time order.
  // Pools of the box's outputs per side, in time order: by protocol and destination (loose), and
  // by that plus the source address and port/id (exact: the flow, once the box's port is known).
  const loose = new Pool();
  const exact = new Pool();
  const byTime = (x: SideFrame, y: SideFrame): number => x.timeUs - y.timeUs || x.side - y.side || x.no - y.no;
  for (const r of [...reals].sort(byTime)) {
    if (r.role !== 'output') continue;
    loose.add(r.side, looseKey(r.frame, pv), r);
    exact.add(r.side, exactKey(r.frame, pv), r);
  }
  const renaming = new PortRenaming(scenario);
  const packets: PacketVerdict[] = [];
  const ref = (f: SideFrame): FrameRef => ({ file: f.file, no: f.no, timeUs: f.timeUs, text: describe(f.frame) });
  let toTheBox = 0;
  const flows = new Set<string>();

  const engine = await o.makeEngine(scenario);
  try {
    const inputs = reals.filter((r) => r.role === 'input').sort(byTime);
    let lastUs = inputs.length ? inputs[0].timeUs : 0;
    for (const inp of inputs) {
      const s = inp.frame.length >= 20 ? src(inp.frame) : 0;
      let ingress: number;
      let frame = inp.frame;
      if (inp.side === SIDE_OUTSIDE) {
        ingress = POINT_INTERNET;
        frame = renaming.renameFrameReverse(inp.frame); // the box's ports → the engine's
      } else {
        const k = byPrivate.get(s);
        if (k === undefined) {
          warnings.push(
            `inside frame ${inp.file} #${inp.no}: source ${formatIpv4(s)} is no instance of the scenario (not fed)`,
          );
          continue;
        }
        ingress = instancePoint(k);
      }
      const timeUs = Math.max(lastUs, inp.timeUs);
      lastUs = timeUs;
      const packet: InputPacket = { timeUs, ingress, frame };
      const [res] = await engine.process([packet]);
      for (const out of res.outputs) {
        const side =
          out.egress === POINT_INTERNET
            ? SIDE_OUTSIDE
            : pointInstance(out.egress) === natIndex
              ? -1
              : isInsideHost(scenario.instances[pointInstance(out.egress)]?.privateIp ?? 0)
                ? SIDE_INSIDE
                : -1;
        if (side < 0) {
          toTheBox++;
          continue;
        }
        packets.push(matchOne(out.frame, side, inp, res.fate === FATE_DELIVERED ? '' : reasonName(res.reason)));
      }
    }
  } finally {
    await engine.close();
  }

  function matchOne(predictedA: Uint8Array, side: number, inp: Real, note: string): PacketVerdict {
    const sideName = SIDE_NAMES[side];
    let pred = renaming.renameFrame(predictedA);
    // The endpoint the box translated, if its port is still to be learnt.
    const ep = side === SIDE_OUTSIDE ? natEndpoint(pred, pv, pub) : null;
    const bound = ep
      ? renaming.lookup(ep[0], pub, natEndpoint(predictedA, pv, pub)?.[1] ?? -1, ep[2], ep[3])
      : undefined;
    const pvR = new PacketView();
    const sameFlow = (r: Real): boolean => {
      if (parseIpv4(r.frame, 0, r.frame.length, pvR) !== PARSE_OK || parseIpv4(pred, 0, pred.length, pv) !== PARSE_OK)
        return true;
      if (pvR.src !== pv.src) return false;
      if (!ep || bound !== undefined) {
        if (pv.proto === PROTO_TCP || pv.proto === PROTO_UDP) return pvR.sport === pv.sport;
        if (pv.proto === PROTO_ICMP && !pv.isIcmpError) return pvR.icmpId === pv.icmpId;
        return true;
      }
      // Unbound: any port the box has not already given to another flow.
      const rp = pv.proto === PROTO_ICMP ? pvR.icmpId : pvR.sport;
      return renaming.lookupReverse(ep[0], pub, rp, ep[2], ep[3]) === undefined;
    };
    const sg = signatures(pred);
    const lo = inp.timeUs - o.windowUs;
    const hi = inp.timeUs + o.windowUs;
    // The flow's own frames first (the box kept the port, or it is learnt); else every frame to
    // this destination: same flow and content, same flow with changed content, or the same content
    // from another port of the box's address (the box changed a port mid-flow: tcp.sport differs).
    let flowCands = exact.within(side, exactKey(pred, pv), lo, hi).filter(sameFlow);
    let pick = flowCands.find((r) => r.strong === sg.strong) ?? flowCands.find((r) => r.weak === sg.weak);
    if (!pick) {
      const cands = loose.within(side, looseKey(pred, pv), lo, hi);
      flowCands = cands.filter(sameFlow);
      pick =
        flowCands.find((r) => r.strong === sg.strong) ??
        flowCands.find((r) => r.weak === sg.weak) ??
        cands.find((r) => r.strong === sg.strong && r.frame.length >= 20 && src(r.frame) === src(pred));
    }
    const inOverlap = inWindow(inp.timeUs);
    if (!pick) {
      return {
        kind: VERDICT_NOT_SEEN,
        side: sideName,
        input: ref(inp),
        predicted: describe(pred),
        fields: [],
        inOverlap,
        note: note || undefined,
      };
    }
    pick.matched = true;
    if (ep && flowCands.includes(pick)) {
      const a = natEndpoint(predictedA, pv, pub);
      const b = natEndpoint(pick.frame, pvR, pub);
      if (a && b) {
        flows.add(`${a[0]}|${a[1]}|${a[2]}|${a[3]}`);
        const conflict = renaming.bind(a[0], pub, a[1], a[2], a[3], b[1], true);
        if (conflict) warnings.push(`${pick.file} #${pick.no}: ${conflict.message}`);
        pred = renaming.renameFrame(predictedA);
      }
    }
    const fields = fieldDiffs(pred, pick.frame);
    return {
      kind: fields.length === 0 ? VERDICT_IDENTICAL : VERDICT_DIFFERS,
      side: sideName,
      input: ref(inp),
      predicted: describe(pred),
      real: ref(pick),
      fields,
      inOverlap: inOverlap && inWindow(pick.timeUs),
    };
  }

  for (const r of reals) {
    if (r.role !== 'output' || r.matched) continue;
    packets.push({
      kind: VERDICT_NOT_PREDICTED,
      side: SIDE_NAMES[r.side],
      real: ref(r),
      fields: [],
      inOverlap: inWindow(r.timeUs),
    });
  }
  packets.sort(
    (x, y) =>
      (x.real?.timeUs ?? x.input?.timeUs ?? 0) - (y.real?.timeUs ?? y.input?.timeUs ?? 0) ||
      (x.input?.timeUs ?? 0) - (y.input?.timeUs ?? 0),
  );
  const cnt = zero();
  const outside = zero();
  for (const p of packets) (p.inOverlap ? cnt : outside)[p.kind]++;
  return {
    engine: o.engineName,
    scenario: scenario.source,
    how: o.sides.how,
    publicAddr: formatIpv4(pub),
    insideHosts: hosts.map(formatIpv4),
    overlap: { fromUs: from, toUs: to },
    sides: counts,
    counts: cnt,
    outsideWindow: outside,
    toTheBox,
    packets,
    findings: findings(packets, scenario, renaming.renamed, flows.size),
    renamedFlows: renaming.renamed,
    flows: flows.size,
    warnings,
    skipped: Object.fromEntries(o.sides.skipped),
  };
}

function emptySide(): SideCounts {
  return { frames: 0, inputs: 0, outputs: 0, unrelated: 0, outsideWindow: 0 };
}

/** What the box does that the scenario does not say, with the scenario change that would. */
export function findings(packets: PacketVerdict[], scenario: Scenario, renamed: number, flows: number): Finding[] {
  const out: Finding[] = [];
  const counted = packets.filter((p) => p.inOverlap);
  const differs = counted.filter((p) => p.kind === VERDICT_DIFFERS);
  const withField = (name: string): PacketVerdict[] =>
    differs.filter((p) => p.fields.some((f) => f.field === name && !f.derived));
  const hasMss = scenario.instances.some(
    (i) => i.mangle && [...i.mangle.chains.FORWARD, ...i.mangle.chains.POSTROUTING].some((r) => r.target === 'TCPMSS'),
  );
  // MSS: the real MSS on SYNs where it differs from the prediction.
  const mss = withField('tcp.mss');
  if (mss.length > 0) {
    const real = mss.map((p) => p.fields.find((f) => f.field === 'tcp.mss')!);
    const values = [...new Set(real.map((f) => f.real))];
    const lowered = real.filter(
      (f) => f.predicted !== 'none' && f.real !== 'none' && Number(f.real) < Number(f.predicted),
    );
    const inserted = real.filter((f) => f.predicted === 'none' && f.real !== 'none');
    const v = lowered.length
      ? Math.max(...lowered.map((f) => Number(f.real)))
      : Math.max(...inserted.map((f) => Number(f.real)));
    if (lowered.length + inserted.length === real.length && Number.isFinite(v)) {
      const rule = `-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS ${v === 8961 ? '--clamp-mss-to-pmtu' : `--set-mss ${v}`}`;
      const maxInserted = Math.max(0, ...inserted.map((f) => Number(f.real)));
      const extra =
        maxInserted > 536
          ? ` (it inserts MSS ${maxInserted} into SYNs without one; Linux since 3.12 inserts at most 536, older kernels the clamp value)`
          : '';
      out.push({
        what: `MSS clamped to ${v} on SYNs (${lowered.length} lowered, ${inserted.length} inserted)${extra}`,
        suggestion: hasMss
          ? `the scenario's TCPMSS rule gives other values: make it ${rule.replace('-A FORWARD ', '')}`
          : `add a mangle TCPMSS rule to the NAT instance's iptables: *mangle / ${rule} / COMMIT`,
        frames: mss.length,
      });
    } else
      out.push({
        what: `TCP MSS differs on ${mss.length} SYN(s) (box: ${values.join(', ')})`,
        suggestion: '',
        frames: mss.length,
      });
  }
  // Ports.
  if (renamed > 0) {
    const random = scenario.instances.some((i) =>
      i.nat?.chains.POSTROUTING.some(
        (r) => r.target.flags & (NF_NAT_RANGE_PROTO_RANDOM | NF_NAT_RANGE_PROTO_RANDOM_FULLY),
      ),
    );
    out.push({
      what: `the box chose other ports than Linux in ${renamed} of ${flows} flow(s)${renamed * 2 >= flows ? ' (ports randomised: Linux keeps the source port when it is free)' : ''}`,
      suggestion:
        random || renamed * 2 < flows
          ? ''
          : 'MASQUERADE --random-fully? (port choice per Linux; compared as a renaming)',
      frames: renamed,
    });
  }
  const ttl = withField('ip.ttl');
  if (ttl.length > 0) {
    const d = ttl.map((p) => {
      const f = p.fields.find((x) => x.field === 'ip.ttl')!;
      return Number(f.real) - Number(f.predicted);
    });
    const all = (k: number): boolean => d.every((x) => x === k);
    out.push({
      what: all(1)
        ? `TTL not decremented (${ttl.length} frames): the box forwards without the router's TTL − 1`
        : all(-1)
          ? `TTL decremented twice (${ttl.length} frames): two routing hops inside the box`
          : `TTL differs in ${ttl.length} frames`,
      suggestion: '',
      frames: ttl.length,
    });
  }
  const id = withField('ip.id');
  if (id.length > 0)
    out.push({
      what: `IP id rewritten in ${id.length} frame(s) (Linux forwards the sender's id)`,
      suggestion: '',
      frames: id.length,
    });
  const csumOnly = differs.filter((p) => p.fields.every((f) => f.field.endsWith('checksum')));
  if (csumOnly.length > 0)
    out.push({
      what: `only a checksum differs in ${csumOnly.length} frame(s) (a capture on the box shows outgoing checksums before offload fills them in)`,
      suggestion: '',
      frames: csumOnly.length,
    });
  const others = new Map<string, number>();
  for (const p of differs)
    for (const f of p.fields)
      if (!f.derived && !['tcp.mss', 'ip.ttl', 'ip.id'].includes(f.field) && !f.field.endsWith('checksum'))
        others.set(f.field, (others.get(f.field) ?? 0) + 1);
  for (const [f, n] of others) out.push({ what: `${f} differs in ${n} frame(s)`, suggestion: '', frames: n });
  const notSeen = counted.filter((p) => p.kind === VERDICT_NOT_SEEN).length;
  if (notSeen > 0)
    out.push({
      what: `${notSeen} frame(s) Linux would send were not seen: the box dropped them (a filter?) or the capture missed them`,
      suggestion: '',
      frames: notSeen,
    });
  const notPred = counted.filter((p) => p.kind === VERDICT_NOT_PREDICTED).length;
  if (notPred > 0)
    out.push({
      what: `${notPred} frame(s) the box sent that Linux with this scenario would not`,
      suggestion: '',
      frames: notPred,
    });
  return out;
}

/** True when nothing counted differs. */
export function verifyPassed(r: VerifyReport): boolean {
  return r.counts.differs === 0 && r.counts['predicted-not-seen'] === 0 && r.counts['seen-not-predicted'] === 0;
}
