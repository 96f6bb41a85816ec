// The probes: packets sent through a fresh engine per probe, judged from what came out (and from
// the engine's own conntrack table for timers). Each probe answers one or more requirements
// (requirements.ts). Cold path.

import {
  F_ACK,
  F_FIN,
  F_RST,
  F_SYN,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  ICMP_DEST_UNREACH,
  ICMP_HOST_UNREACH,
  ICMP_PORT_UNREACH,
} from '../../packet/constants.ts';
import { buildIpv4, buildUdp } from '../../packet/build.ts';
import { formatIpv4 } from '../../packet/addr.ts';
import { rd16, rd32 } from '../../packet/bytes.ts';
import { POINT_INTERNET } from '../../spec/scenario.ts';
import { ep, type ProbeContext, type ProbeSession, type Sent } from './kit.ts';

export type Verdict = 'pass' | 'fail' | 'n/a' | 'info' | 'untestable';

export interface Judgement {
  verdict: Verdict;
  /** The probe and what came out. */
  evidence: string;
  /** The observed behaviour in a word or two (compared across engines for INFO rows). */
  value?: string;
}

export interface Probe {
  name: string;
  /** Requirement ids this probe judges. */
  answers: readonly string[];
  run(ctx: ProbeContext): Promise<Record<string, Judgement>>;
}

const SERVER_PORT = 3478;
const SECOND = 1_000_000;

function ipv4Src(frame: Uint8Array): number {
  return rd32(frame, 12) >>> 0;
}

/** IP payload bytes of an IPv4 packet (total length minus the header). */
function ipv4PayloadLength(frame: Uint8Array): number {
  return rd16(frame, 2) - (frame[0] & 0x0f) * 4;
}

function outFrame(s: Sent): Uint8Array | null {
  return s.result.outputs.find((o) => o.egress === POINT_INTERNET)?.frame ?? null;
}

/** The mapped external port of an outbound packet, or null (dropped / not translated). */
function mapped(s: Sent, ps: ProbeSession): number | null {
  const o = s.toInternet;
  return o && o.src === ps.topo.external ? o.sport : null;
}

function deliveredTo(s: Sent, point: number, dport?: number): boolean {
  const o = s.at(point);
  return !!o && (dport === undefined || o.dport === dport);
}

function all(ids: readonly string[], j: Judgement): Record<string, Judgement> {
  return Object.fromEntries(ids.map((id) => [id, j]));
}

function notTranslated(ids: readonly string[], s: Sent): Record<string, Judgement> {
  return all(ids, { verdict: 'fail', evidence: `outbound probe not translated: ${s.input} ${s.fate()}` });
}

// ---------------------------------------------------------------------------------------------
// RFC 4787 / 5382: mapping behaviour

type MappingKind = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';

async function mappingBehaviour(
  ps: ProbeSession,
  send: (sport: number, dst: number, dport: number) => Promise<Sent>,
  sport: number,
): Promise<{ kind: MappingKind | null; evidence: string; failed?: Sent }> {
  const [x1, x2] = ps.topo.remotes;
  const a = await send(sport, x1, SERVER_PORT);
  const b = await send(sport, x1, SERVER_PORT + 1);
  const ma = mapped(a, ps);
  const mb = mapped(b, ps);
  if (ma === null) return { kind: null, evidence: '', failed: a };
  if (mb === null) return { kind: null, evidence: '', failed: b };
  const parts = [
    `from ${ep(ps.hostIp(0), sport)}: to ${ep(x1, SERVER_PORT)} mapped to :${ma}`,
    `to ${ep(x1, SERVER_PORT + 1)} :${mb}`,
  ];
  let mc: number | null = ma;
  if (x2 !== undefined) {
    const c = await send(sport, x2, SERVER_PORT);
    mc = mapped(c, ps);
    if (mc === null) return { kind: null, evidence: '', failed: c };
    parts.push(`to ${ep(x2, SERVER_PORT)} :${mc}`);
  }
  const kind: MappingKind =
    ma !== mb ? 'address-and-port-dependent' : ma !== mc ? 'address-dependent' : 'endpoint-independent';
  return {
    kind,
    evidence: parts.join(', ') + (x2 === undefined ? ' (one internet host: address dependence not probed)' : ''),
  };
}

const udpMapping: Probe = {
  name: 'udp-mapping',
  answers: ['4787-REQ-1'],
  async run(ctx) {
    const ps = await ctx.fresh();
    const r = await mappingBehaviour(ps, (sp, d, dp) => ps.udpOut(0, sp, d, dp), 40001);
    if (!r.kind) return notTranslated(this.answers, r.failed!);
    return {
      '4787-REQ-1': {
        verdict: r.kind === 'endpoint-independent' ? 'pass' : 'fail',
        evidence: r.evidence,
        value: r.kind,
      },
    };
  },
};

const tcpMapping: Probe = {
  name: 'tcp-mapping',
  answers: ['5382-REQ-1'],
  async run(ctx) {
    const ps = await ctx.fresh();
    const r = await mappingBehaviour(ps, (sp, d, dp) => ps.tcpOut(0, sp, d, dp, F_SYN, 1000, 0), 40002);
    if (!r.kind) return notTranslated(this.answers, r.failed!);
    return {
      '5382-REQ-1': {
        verdict: r.kind === 'endpoint-independent' ? 'pass' : 'fail',
        evidence: `SYNs ${r.evidence}`,
        value: r.kind,
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// RFC 4787 §4.1-4.2, RFC 7857 §3: address pooling and port assignment

const portAssignment: Probe = {
  name: 'port-assignment',
  answers: ['4787-REQ-2', '4787-REQ-3', '4787-REQ-3ab', '4787-4.2.1', '4787-REQ-4', '4787-4.2.3', '7857-3'],
  async run(ctx) {
    const out: Record<string, Judgement> = {};
    const [x1, x2] = ctx.topo.remotes;
    const twoHosts = ctx.topo.inside.length > 1;

    // Pooling: two internal endpoints of one host, two destinations: same external address?
    {
      const ps = await ctx.fresh();
      const a = await ps.udpOut(0, 41001, x1, SERVER_PORT);
      const b = await ps.udpOut(0, 41002, x2 ?? x1, SERVER_PORT);
      const oa = a.toInternet;
      const ob = b.toInternet;
      if (!oa || !ob) out['4787-REQ-2'] = { verdict: 'fail', evidence: `not translated: ${(!oa ? a : b).fate()}` };
      else {
        const paired = oa.src === ob.src;
        out['4787-REQ-2'] = {
          verdict: paired ? 'pass' : 'fail',
          value: paired ? 'paired' : 'arbitrary',
          evidence: `${ep(ps.hostIp(0), 41001)} -> ${formatIpv4(oa.src)}, ${ep(ps.hostIp(0), 41002)} -> ${formatIpv4(ob.src)}`,
        };
      }
    }
    // Preservation, range, contiguity, parity.
    {
      const ps = await ctx.fresh();
      const p = await ps.udpOut(0, 41010, x1, SERVER_PORT);
      const mp = mapped(p, ps);
      if (mp === null)
        return { ...out, ...notTranslated(['4787-REQ-3ab', '4787-4.2.1', '4787-REQ-4', '4787-4.2.3'], p) };
      out['4787-4.2.1'] = {
        verdict: 'info',
        value: mp === 41010 ? 'preserved' : 'not preserved',
        evidence: `${ep(ps.hostIp(0), 41010)} -> :${mp}`,
      };
      const low = await ps.udpOut(0, 700, x1, SERVER_PORT);
      const ml = mapped(low, ps);
      const okRange = ml !== null && ml <= 1023 && mp >= 1024;
      out['4787-REQ-3ab'] = {
        verdict: okRange ? 'pass' : 'fail',
        evidence: `source port 700 -> :${ml ?? 'not translated'}, 41010 -> :${mp}`,
      };
      const c = await ps.udpOut(0, 41011, x1, SERVER_PORT);
      const mc = mapped(c, ps);
      out['4787-4.2.3'] = {
        verdict: 'info',
        value: mc === mp + 1 ? 'contiguous' : 'not contiguous',
        evidence: `41010 -> :${mp}, 41011 -> :${mc ?? 'not translated'}`,
      };
      const pairs: string[] = [];
      let kept = true;
      for (let sp = 41020; sp < 41036; sp++) {
        const s = await ps.udpOut(0, sp, x1, SERVER_PORT);
        const m = mapped(s, ps);
        if (m === null || (m & 1) !== (sp & 1)) kept = false;
        if (pairs.length < 4) pairs.push(`${sp} -> :${m ?? '-'}`);
      }
      out['4787-REQ-4'] = {
        verdict: kept ? 'pass' : 'fail',
        value: kept ? 'parity kept' : 'parity not kept',
        evidence: `16 source ports 41020-41035 to ${ep(x1, SERVER_PORT)}: parity ${kept ? 'kept for all' : 'changed for some'} (${pairs.join(', ')}, ...)`,
      };
    }
    // Overloading: a second internal endpoint wanting an external endpoint already in use towards
    // the same destination. Two inside hosts: the same source port; one: an entry the internet
    // host opened to the NAT itself on that port.
    {
      const ps = await ctx.fresh();
      let how: string;
      let first: number | null;
      if (twoHosts) {
        const a = await ps.udpOut(0, 41040, x1, SERVER_PORT);
        first = mapped(a, ps);
        how = `${ep(ps.hostIp(0), 41040)} -> ${ep(x1, SERVER_PORT)} mapped to :${first}; then ${ep(ps.hostIp(1), 41040)} to the same destination`;
      } else {
        const a = await ps.udpIn(x1, SERVER_PORT, 41040);
        first = 41040;
        how = `${ep(x1, SERVER_PORT)} -> ${ep(ps.topo.external, 41040)} first (an entry to the NAT itself, ${a.fate()}); then ${ep(ps.hostIp(0), 41040)} -> ${ep(x1, SERVER_PORT)}`;
      }
      const b = await ps.udpOut(twoHosts ? 1 : 0, 41040, x1, SERVER_PORT);
      const mb = mapped(b, ps);
      if (mb === null || first === null) out['4787-REQ-3'] = { verdict: 'fail', evidence: `${how}: ${b.fate()}` };
      else {
        out['4787-REQ-3'] = {
          verdict: mb === first ? 'fail' : 'pass',
          evidence: `${how}: mapped to :${mb} (${mb === first ? 'the port in use: overloaded' : 'another port'})`,
        };
      }
    }
    // Port overlapping (RFC 7857 §3): needs two internal endpoints with the same source port.
    if (!twoHosts || x2 === undefined) {
      out['7857-3'] = {
        verdict: 'n/a',
        evidence: 'needs two hosts behind the NAT and two internet hosts; the scenario has fewer',
      };
    } else {
      const ps = await ctx.fresh();
      const a = await ps.udpOut(0, 41050, x1, SERVER_PORT);
      const b = await ps.udpOut(1, 41050, x2, SERVER_PORT);
      const ma = mapped(a, ps);
      const mb = mapped(b, ps);
      out['7857-3'] = {
        verdict: 'info',
        value: ma !== null && ma === mb ? 'overlapping' : 'no overlapping',
        evidence: `${ep(ps.hostIp(0), 41050)} -> ${ep(x1, SERVER_PORT)} :${ma ?? '-'}, ${ep(ps.hostIp(1), 41050)} -> ${ep(x2, SERVER_PORT)} :${mb ?? '-'}`,
      };
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------
// RFC 4787 §4.3: UDP mapping timer and refresh

/** On engines with a virtual clock: the mapping really is gone `s` seconds after the last packet. */
async function confirmExpiry(
  ctx: ProbeContext,
  s: number,
  setup: (ps: ProbeSession) => Promise<number | null>,
  again: (ps: ProbeSession, m: number) => Promise<Sent>,
  hostPoint: number,
): Promise<string> {
  if (ctx.maker.clock !== 'virtual') return '';
  const ps = await ctx.fresh();
  const m = await setup(ps);
  if (m === null) return '';
  await ps.idle(s * SECOND);
  const r = await again(ps, m);
  return deliveredTo(r, hostPoint)
    ? `; ! still delivered ${s} s later`
    : `; confirmed: a reply ${s} s later is not delivered`;
}

const udpTimers: Probe = {
  name: 'udp-timers',
  answers: ['4787-REQ-5', '4787-REQ-5c'],
  async run(ctx) {
    const ps = await ctx.fresh();
    const x1 = ctx.topo.remotes[0];
    const host = ps.hostIp(0);
    const o = await ps.udpOut(0, 41100, x1, SERVER_PORT);
    const m = mapped(o, ps);
    if (m === null) return notTranslated(this.answers, o);
    const unreplied = await ps.lifetime(PROTO_UDP, host, 41100);
    await ps.udpIn(x1, SERVER_PORT, m, 100_000);
    const replied = await ps.lifetime(PROTO_UDP, host, 41100);
    await ps.udpOut(0, 41100, x1, SERVER_PORT, 2_100_000);
    const stream = await ps.lifetime(PROTO_UDP, host, 41100);
    if (!unreplied || !replied || !stream) {
      return all(this.answers, {
        verdict: 'fail',
        evidence: `no conntrack entry for ${ep(host, 41100)}: ${ps.log.join('; ')}`,
      });
    }
    const min = Math.min(unreplied.s, replied.s, stream.s);
    const seen = `after one outbound packet ${unreplied.s} s; after a reply within 2 s ${replied.s} s; two-way for > 2 s ${stream.s} s`;
    const confirm = await confirmExpiry(
      ctx,
      unreplied.s,
      async (p) => mapped(await p.udpOut(0, 41100, x1, SERVER_PORT), p),
      (p, mm) => p.udpIn(x1, SERVER_PORT, mm),
      ps.hostPoint(0),
    );
    return {
      '4787-REQ-5': {
        verdict: min >= 120 ? 'pass' : 'fail',
        value: `${min} s`,
        evidence: `mapping lifetime ${seen}${confirm}`,
      },
      '4787-REQ-5c': {
        verdict: stream.s >= 300 ? 'pass' : 'fail',
        value: `${stream.s} s`,
        evidence: `longest lifetime (two-way flow) ${stream.s} s`,
      },
    };
  },
};

const udpRefresh: Probe = {
  name: 'udp-refresh',
  answers: ['4787-REQ-6', '4787-REQ-6a'],
  async run(ctx) {
    const x1 = ctx.topo.remotes[0];
    // Outbound: two outbound packets 1.5 s apart; refreshed iff the timer is back to full.
    const a = await ctx.fresh();
    const oa = await a.udpOut(0, 41200, x1, SERVER_PORT);
    if (mapped(oa, a) === null) return notTranslated(this.answers, oa);
    const a1 = await a.lifetime(PROTO_UDP, a.hostIp(0), 41200);
    await a.udpOut(0, 41200, x1, SERVER_PORT, 1_500_000);
    const a2 = await a.lifetime(PROTO_UDP, a.hostIp(0), 41200);
    // Inbound: a reply, then another reply 1.5 s later.
    const b = await ctx.fresh();
    const ob = await b.udpOut(0, 41201, x1, SERVER_PORT);
    const mb = mapped(ob, b);
    if (mb === null) return notTranslated(this.answers, ob);
    await b.udpIn(x1, SERVER_PORT, mb, 100_000);
    const b1 = await b.lifetime(PROTO_UDP, b.hostIp(0), 41201);
    const again = await b.udpIn(x1, SERVER_PORT, mb, 1_500_000);
    const b2 = await b.lifetime(PROTO_UDP, b.hostIp(0), 41201);
    const outRefresh = !!a1 && !!a2 && a2.s >= a1.s;
    const inRefresh = !!b1 && !!b2 && b2.s >= b1.s && deliveredTo(again, b.hostPoint(0));
    return {
      '4787-REQ-6': {
        verdict: outRefresh ? 'pass' : 'fail',
        value: outRefresh ? 'outbound refresh' : 'no outbound refresh',
        evidence: `timer ${a1?.s ?? '-'} s after an outbound packet, ${a2?.s ?? '-'} s after another one 1.5 s later`,
      },
      '4787-REQ-6a': {
        verdict: 'info',
        value: inRefresh ? 'inbound refresh' : 'no inbound refresh',
        evidence: `timer ${b1?.s ?? '-'} s after a reply, ${b2?.s ?? '-'} s after another reply 1.5 s later`,
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Filtering (RFC 4787 REQ-8, RFC 5382 REQ-3)

type FilterKind = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';

function filterKind(samePortOk: boolean, otherAddrOk: boolean | null): FilterKind {
  if (otherAddrOk) return 'endpoint-independent';
  return samePortOk ? 'address-dependent' : 'address-and-port-dependent';
}

const udpFiltering: Probe = {
  name: 'udp-filtering',
  answers: ['4787-REQ-8'],
  async run(ctx) {
    const [x1, x2] = ctx.topo.remotes;
    const ps = await ctx.fresh();
    const o = await ps.udpOut(0, 41300, x1, SERVER_PORT);
    const m = mapped(o, ps);
    if (m === null) return notTranslated(this.answers, o);
    const port = await ps.udpIn(x1, SERVER_PORT + 1, m);
    const addr = x2 !== undefined ? await ps.udpIn(x2, SERVER_PORT, m) : null;
    const pOk = deliveredTo(port, ps.hostPoint(0), 41300);
    const aOk = addr ? deliveredTo(addr, ps.hostPoint(0), 41300) : null;
    const kind = filterKind(pOk, aOk);
    return {
      '4787-REQ-8': {
        verdict: kind === 'address-and-port-dependent' ? 'fail' : 'pass',
        value: kind,
        evidence:
          `mapping :${m} opened to ${ep(x1, SERVER_PORT)}; from ${ep(x1, SERVER_PORT + 1)} ${port.fate()}` +
          (addr ? `; from ${ep(x2, SERVER_PORT)} ${addr.fate()}` : ''),
      },
    };
  },
};

const tcpFiltering: Probe = {
  name: 'tcp-filtering',
  answers: ['5382-REQ-3'],
  async run(ctx) {
    const [x1, x2] = ctx.topo.remotes;
    const ps = await ctx.fresh();
    const o = await ps.tcpOut(0, 41310, x1, 443, F_SYN, 1000, 0);
    const m = mapped(o, ps);
    if (m === null) return notTranslated(this.answers, o);
    const port = await ps.tcpIn(x1, 444, m, F_SYN, 7000, 0);
    const addr = x2 !== undefined ? await ps.tcpIn(x2, 443, m, F_SYN, 9000, 0) : null;
    const pOk = deliveredTo(port, ps.hostPoint(0), 41310);
    const aOk = addr ? deliveredTo(addr, ps.hostPoint(0), 41310) : null;
    const kind = filterKind(pOk, aOk);
    return {
      '5382-REQ-3': {
        verdict: kind === 'address-and-port-dependent' ? 'fail' : 'pass',
        value: kind,
        evidence: `SYN to ${ep(x1, 443)} mapped :${m}; SYN from ${ep(x1, 444)} ${port.fate()}${addr ? `; SYN from ${ep(x2, 443)} ${addr.fate()}` : ''}`,
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Hairpinning (RFC 4787 REQ-9, RFC 5508 REQ-7)

const hairpin: Probe = {
  name: 'hairpin',
  answers: ['4787-REQ-9', '4787-REQ-9a', '5508-REQ-7'],
  async run(ctx) {
    const x1 = ctx.topo.remotes[0];
    const ps = await ctx.fresh();
    const b = ctx.topo.inside.length > 1 ? 1 : 0;
    const a = await ps.udpOut(0, 41400, x1, SERVER_PORT);
    const ma = mapped(a, ps);
    if (ma === null) return notTranslated(this.answers, a);
    const h = await ps.udpOut(b, 41401, ps.topo.external, ma);
    const got = h.at(ps.hostPoint(0));
    const ok = !!got && got.dport === 41400;
    const evidence = `${ep(ps.hostIp(0), 41400)} mapped to ${ep(ps.topo.external, ma)}; ${ps.hostName(b)} ${ep(ps.hostIp(b), 41401)} -> ${ep(ps.topo.external, ma)} ${h.fate()}`;
    const res: Record<string, Judgement> = {
      '4787-REQ-9': { verdict: ok ? 'pass' : 'fail', value: ok ? 'hairpin' : 'no hairpin', evidence },
      '4787-REQ-9a': ok
        ? {
            verdict: got!.src === ps.topo.external ? 'pass' : 'fail',
            evidence: `arrived from ${ep(got!.src, got!.sport)}`,
          }
        : { verdict: 'n/a', evidence: 'no hairpinning (REQ-9)' },
    };
    // Hairpinned ICMP error: B answers a packet from A's external endpoint with port unreachable.
    const quoted = buildUdp({
      src: ps.topo.external,
      dst: ps.hostIp(b),
      sport: ma,
      dport: 41402,
      payload: new Uint8Array(16),
    });
    const e = await ps.icmpErrorOut(b, ps.topo.external, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, quoted);
    const eo = e.at(ps.hostPoint(0));
    res['5508-REQ-7'] = {
      verdict: eo && eo.icmpType === ICMP_DEST_UNREACH ? 'pass' : 'fail',
      evidence: `${ps.hostName(b)} sends port unreachable about ${ep(ps.topo.external, ma)} -> :41402 to ${formatIpv4(ps.topo.external)}: ${e.fate()}`,
    };
    return res;
  },
};

// ---------------------------------------------------------------------------------------------
// ICMP: errors (RFC 4787 REQ-12, RFC 5508 REQ-3/4) and queries (RFC 5508 REQ-1/2)

const icmpErrors: Probe = {
  name: 'icmp-errors',
  answers: ['4787-REQ-12', '5508-REQ-4', '5508-REQ-5'],
  async run(ctx) {
    const x1 = ctx.topo.remotes[0];
    const ps = await ctx.fresh();
    const host = ps.hostIp(0);
    const o = await ps.udpOut(0, 41500, x1, SERVER_PORT);
    const m = mapped(o, ps);
    const seenOut = outFrame(o);
    if (m === null || !seenOut) return notTranslated(this.answers, o);
    await ps.udpIn(x1, SERVER_PORT, m);
    const err = await ps.icmpErrorIn(x1, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, seenOut);
    const ge = err.at(ps.hostPoint(0));
    const okIn = !!ge && ge.dst === host && ge.innerSrc === host && ge.innerSport === 41500;
    const after = await ps.udpIn(x1, SERVER_PORT, m);
    const alive = deliveredTo(after, ps.hostPoint(0), 41500);
    // From inside: the host answers an inbound packet with port unreachable.
    const inFrame = after.result.outputs.find((x) => x.egress === ps.hostPoint(0))?.frame;
    let okOut = false;
    let outEvidence = 'no inbound packet reached the host to answer';
    if (inFrame) {
      const e2 = await ps.icmpErrorOut(0, x1, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, inFrame);
      const g2 = e2.toInternet;
      okOut = !!g2 && g2.src === ps.topo.external && g2.innerDst === ps.topo.external && g2.innerDport === m;
      outEvidence = `host answers ${ep(x1, SERVER_PORT)} -> ${ep(host, 41500)} with port unreachable: ${e2.fate()}`;
    }
    return {
      '5508-REQ-4': {
        verdict: okIn ? 'pass' : 'fail',
        evidence: `port unreachable from ${formatIpv4(x1)} quoting ${ep(ps.topo.external, m)} -> ${ep(x1, SERVER_PORT)}: ${err.fate()}`,
      },
      '4787-REQ-12': {
        verdict: alive ? 'pass' : 'fail',
        evidence: `after the port unreachable, ${ep(x1, SERVER_PORT)} -> :${m} ${after.fate()}`,
      },
      '5508-REQ-5': { verdict: okOut ? 'pass' : 'fail', evidence: outEvidence },
    };
  },
};

const icmpQuery: Probe = {
  name: 'icmp-query',
  answers: ['5508-REQ-1', '5508-REQ-2'],
  async run(ctx) {
    const x1 = ctx.topo.remotes[0];
    const ps = await ctx.fresh();
    const id = 0x4d2;
    const o = await ps.echoOut(0, x1, id);
    const m = mapped(o, ps);
    if (m === null) return notTranslated(this.answers, o);
    const r = await ps.echoReplyIn(x1, m);
    const got = r.at(ps.hostPoint(0));
    const ok = !!got && got.sport === id;
    const life = await ps.lifetime(PROTO_ICMP, ps.hostIp(0), id);
    const confirm = life
      ? await confirmExpiry(
          ctx,
          life.s,
          async (p) => mapped(await p.echoOut(0, x1, id), p),
          (p, mm) => p.echoReplyIn(x1, mm),
          ps.hostPoint(0),
        )
      : '';
    return {
      '5508-REQ-1': {
        verdict: ok ? 'pass' : 'fail',
        evidence: `echo id ${id} -> ${formatIpv4(x1)} as id ${m}; reply ${r.fate()}`,
      },
      '5508-REQ-2': {
        verdict: life && life.s >= 60 ? 'pass' : 'fail',
        value: life ? `${life.s} s` : 'none',
        evidence: `query mapping lifetime ${life ? `${life.s} s` : 'none (no entry)'} after the reply${confirm}`,
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Fragments (RFC 4787 REQ-13/14)

const fragments: Probe = {
  name: 'fragments',
  answers: ['4787-REQ-13', '4787-REQ-14'],
  async run(ctx) {
    const x1 = ctx.topo.remotes[0];
    const ps = await ctx.fresh();
    const whole = buildUdp({
      src: ps.hostIp(0),
      dst: x1,
      sport: 41600,
      dport: SERVER_PORT,
      payload: new Uint8Array(40).fill(7),
    });
    const l4 = whole.subarray(20);
    const ipId = 0x5151;
    const f1 = buildIpv4({ src: ps.hostIp(0), dst: x1, proto: PROTO_UDP, payload: l4.subarray(0, 24), ipId, mf: true });
    const f2 = buildIpv4({ src: ps.hostIp(0), dst: x1, proto: PROTO_UDP, payload: l4.subarray(24), ipId, fragOff: 24 });
    const s2 = await ps.send(ps.hostPoint(0), f2);
    const s1 = await ps.send(ps.hostPoint(0), f1);
    // Translated means the whole datagram left with the external address: its UDP header and
    // payload (l4.length bytes) in one reassembled packet or across translated fragments.
    const carried = [...s2.result.outputs, ...s1.result.outputs]
      .filter((o) => o.egress === POINT_INTERNET && ipv4Src(o.frame) === ps.topo.external)
      .reduce((n, o) => n + ipv4PayloadLength(o.frame), 0);
    const translated = carried >= l4.length;
    let j14: Judgement;
    const evidence = `UDP datagram in 2 fragments, last one first: ${s2.fate()}; then the first: ${s1.fate()}${translated ? '' : `; ${carried} of its ${l4.length} bytes left translated`}`;
    if (translated) j14 = { verdict: 'pass', evidence };
    else if (!ctx.maker.reassembles && s1.fragmentLimit) {
      j14 = { verdict: 'untestable', evidence: `${evidence} — this engine does not reassemble (docs/semantics.md §2)` };
    } else j14 = { verdict: 'fail', evidence };
    return {
      '4787-REQ-13': {
        verdict: 'n/a',
        evidence:
          "no link on the path is narrower than the inside network (natlab has no MTU; the kernel engine's links are all 9001): the NAT never has to fragment",
      },
      '4787-REQ-14': j14,
    };
  },
};

// ---------------------------------------------------------------------------------------------
// TCP: simultaneous open, unsolicited SYN, timers, RST (RFC 5382, RFC 7857)

const C_ISN = 1000;
const S_ISN = 5000;

const tcpSimultaneousOpen: Probe = {
  name: 'tcp-simultaneous-open',
  answers: ['5382-REQ-2'],
  async run(ctx) {
    const x1 = ctx.topo.remotes[0];
    const ps = await ctx.fresh();
    const o = await ps.tcpOut(0, 41700, x1, 5000, F_SYN, C_ISN, 0);
    const m = mapped(o, ps);
    if (m === null) return notTranslated(this.answers, o);
    const s = await ps.tcpIn(x1, 5000, m, F_SYN, S_ISN, 0);
    const sa = await ps.tcpOut(0, 41700, x1, 5000, F_SYN | F_ACK, C_ISN, S_ISN + 1);
    const sa2 = await ps.tcpIn(x1, 5000, m, F_SYN | F_ACK, S_ISN, C_ISN + 1);
    const ack = await ps.tcpOut(0, 41700, x1, 5000, F_ACK, C_ISN + 1, S_ISN + 1);
    const ok =
      deliveredTo(s, ps.hostPoint(0), 41700) &&
      mapped(sa, ps) === m &&
      deliveredTo(sa2, ps.hostPoint(0), 41700) &&
      mapped(ack, ps) === m;
    const e = await ps.entry(PROTO_TCP, ps.hostIp(0), 41700);
    return {
      '5382-REQ-2': {
        verdict: ok ? 'pass' : 'fail',
        evidence: `SYN out (:${m}); crossing SYN in ${s.fate()}; SYN/ACK out ${sa.toInternet ? 'translated' : sa.fate()}; SYN/ACK in ${sa2.fate()}; ACK out ${ack.toInternet ? 'translated' : ack.fate()}; conntrack ${e?.state ?? 'none'}`,
      },
    };
  },
};

const tcpUnsolicitedSyn: Probe = {
  name: 'tcp-unsolicited-syn',
  answers: ['5382-REQ-4'],
  async run(ctx) {
    const x1 = ctx.topo.remotes[0];
    const ps = await ctx.fresh();
    const syn = await ps.tcpIn(x1, 5001, 41800, F_SYN, S_ISN, 0);
    const later = await ps.tcpOut(0, 41800, x1, 5001, F_SYN, C_ISN, 0, SECOND);
    const local = syn.at(ps.natPoint) !== null;
    const inside = ps.topo.inside.some((_, i) => syn.at(ps.hostPoint(i)) !== null);
    const answered = syn.outputs.some((o) => o.point === POINT_INTERNET);
    const held = !local && !inside && !answered;
    return {
      '5382-REQ-4': {
        verdict: held ? 'pass' : 'fail',
        evidence: `unsolicited SYN ${ep(x1, 5001)} -> ${ep(ps.topo.external, 41800)} ${syn.fate()}${local ? " (the NAT instance's own stack)" : ''}; the host's own SYN 1 s later ${later.fate()}`,
      },
    };
  },
};

async function handshake(
  ps: ProbeSession,
  sport: number,
  dport: number,
): Promise<{
  m: number | null;
  log: string;
  readings: string[];
  est: number | null;
  transitory: Array<{ state: string; s: number }>;
}> {
  const x1 = ps.topo.remotes[0];
  const host = ps.hostIp(0);
  const readings: string[] = [];
  const transitory: Array<{ state: string; s: number }> = [];
  let est: number | null = null;
  const read = async (): Promise<void> => {
    const l = await ps.lifetime(PROTO_TCP, host, sport);
    if (!l) return;
    readings.push(`${l.state} ${l.s} s`);
    if (l.state === 'ESTABLISHED') est = l.s;
    else transitory.push(l);
  };
  const o = await ps.tcpOut(0, sport, x1, dport, F_SYN, C_ISN, 0);
  const m = mapped(o, ps);
  if (m === null) return { m, log: o.fate(), readings, est, transitory };
  await read();
  await ps.tcpIn(x1, dport, m, F_SYN | F_ACK, S_ISN, C_ISN + 1);
  await read();
  await ps.tcpOut(0, sport, x1, dport, F_ACK, C_ISN + 1, S_ISN + 1);
  await read();
  return { m, log: '', readings, est, transitory };
}

const tcpTimers: Probe = {
  name: 'tcp-timers',
  answers: ['5382-REQ-5', '7857-2.1'],
  async run(ctx) {
    const x1 = ctx.topo.remotes[0];
    const ps = await ctx.fresh();
    const h = await handshake(ps, 41900, 443);
    if (h.m === null) return all(this.answers, { verdict: 'fail', evidence: `SYN not translated: ${h.log}` });
    const host = ps.hostIp(0);
    const read = async (): Promise<void> => {
      const l = await ps.lifetime(PROTO_TCP, host, 41900);
      if (!l) return;
      h.readings.push(`${l.state} ${l.s} s`);
      if (l.state !== 'ESTABLISHED') h.transitory.push(l);
    };
    await ps.tcpOut(0, 41900, x1, 443, F_FIN | F_ACK, C_ISN + 1, S_ISN + 1);
    await read();
    await ps.tcpIn(x1, 443, h.m, F_FIN | F_ACK, S_ISN + 1, C_ISN + 2);
    await read();
    await ps.tcpOut(0, 41900, x1, 443, F_ACK, C_ISN + 2, S_ISN + 2);
    await read();
    const minT = h.transitory.reduce((a, b) => (b.s < a.s ? b : a), { state: 'none', s: Infinity });
    return {
      '5382-REQ-5': {
        verdict: h.est !== null && h.est >= 7440 ? 'pass' : 'fail',
        value: h.est !== null ? `${h.est} s` : 'none',
        evidence: `after the handshake: ${h.readings[2] ?? 'no entry'}`,
      },
      '7857-2.1': {
        verdict: minT.s >= 240 ? 'pass' : 'fail',
        value: `${minT.state} ${minT.s} s`,
        evidence: `timers through open and close: ${h.readings.join(', ')}; shortest transitory ${minT.state} ${minT.s} s`,
      },
    };
  },
};

const tcpRst: Probe = {
  name: 'tcp-rst',
  answers: ['7857-2.2'],
  async run(ctx) {
    const x1 = ctx.topo.remotes[0];
    const ps = await ctx.fresh();
    const h = await handshake(ps, 42000, 443);
    if (h.m === null) return all(this.answers, { verdict: 'fail', evidence: `SYN not translated: ${h.log}` });
    const rst = await ps.tcpIn(x1, 443, h.m, F_RST, S_ISN + 1, 0);
    const l = await ps.lifetime(PROTO_TCP, ps.hostIp(0), 42000);
    const s = l?.s ?? 0;
    return {
      '7857-2.2': {
        verdict: s >= 240 ? 'pass' : 'fail',
        value: `${s} s`,
        evidence: `established, then RST from ${ep(x1, 443)} ${rst.fate()}; state kept ${l ? `${l.s} s (${l.state})` : '0 s (entry removed)'}`,
      },
    };
  },
};

const noRefreshFromErrors: Probe = {
  name: 'no-refresh-from-rst-or-icmp',
  answers: ['7857-7.1'],
  async run(ctx) {
    const x1 = ctx.topo.remotes[0];
    // UDP: an inbound packet, then the host's port unreachable 1.5 s later.
    const a = await ctx.fresh();
    const o = await a.udpOut(0, 42100, x1, SERVER_PORT);
    const m = mapped(o, a);
    if (m === null) return notTranslated(this.answers, o);
    const inb = await a.udpIn(x1, SERVER_PORT, m, 100_000);
    const l1 = await a.lifetime(PROTO_UDP, a.hostIp(0), 42100);
    const inFrame = inb.result.outputs.find((x) => x.egress === a.hostPoint(0))?.frame;
    let icmpRefresh: boolean | null = null;
    let l2s = '-';
    if (inFrame && l1) {
      await a.icmpErrorOut(0, x1, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, inFrame, 1_500_000);
      const l2 = await a.lifetime(PROTO_UDP, a.hostIp(0), 42100);
      icmpRefresh = !!l2 && l2.s >= l1.s;
      l2s = l2 ? `${l2.s} s` : 'gone';
    }
    // TCP: an established connection, then the host's RST 1.5 s later.
    const b = await ctx.fresh();
    const h = await handshake(b, 42101, 443);
    let rstRefresh: boolean | null = null;
    let r = '';
    if (h.m !== null && h.est !== null) {
      await b.tcpOut(0, 42101, x1, 443, F_RST, C_ISN + 1, 0, 1_500_000);
      const l = await b.lifetime(PROTO_TCP, b.hostIp(0), 42101);
      rstRefresh = !!l && l.s >= h.est;
      r = `established ${h.est} s, after the host's RST ${l ? `${l.state} ${l.s} s` : 'gone'}`;
    }
    const refreshed = icmpRefresh === true || rstRefresh === true;
    const tested = icmpRefresh !== null || rstRefresh !== null;
    return {
      '7857-7.1': {
        verdict: !tested ? 'fail' : refreshed ? 'fail' : 'pass',
        evidence: `UDP timer ${l1 ? `${l1.s} s` : '-'} after an inbound packet, ${l2s} after the host's port unreachable 1.5 s later; TCP ${r || 'handshake failed'}`,
      },
    };
  },
};

const tcpMore: Probe = {
  name: 'tcp-overloading-hairpin-icmp',
  answers: ['5382-REQ-7', '5382-REQ-8', '5382-REQ-10'],
  async run(ctx) {
    const x1 = ctx.topo.remotes[0];
    const out: Record<string, Judgement> = {};
    const twoHosts = ctx.topo.inside.length > 1;
    // Port overloading: two hosts, the same source port, the same destination. (With one host a
    // collision would need an entry opened to the NAT itself, which the kernel's own RST removes.)
    if (!twoHosts) {
      out['5382-REQ-7'] = { verdict: 'n/a', evidence: 'needs two hosts behind the NAT; the scenario has one' };
    } else {
      const ps = await ctx.fresh();
      const a = await ps.tcpOut(0, 42200, x1, 443, F_SYN, C_ISN, 0);
      const b = await ps.tcpOut(1, 42200, x1, 443, F_SYN, C_ISN, 0);
      const ma = mapped(a, ps);
      const mb = mapped(b, ps);
      out['5382-REQ-7'] = {
        verdict: ma !== null && mb !== null && ma !== mb ? 'pass' : 'fail',
        evidence: `SYNs from ${ep(ps.hostIp(0), 42200)} and ${ep(ps.hostIp(1), 42200)} to ${ep(x1, 443)}: :${ma ?? '-'} and :${mb ?? '-'}`,
      };
    }
    // Hairpinning: a SYN to another internal endpoint's mapping.
    {
      const ps = await ctx.fresh();
      const b = twoHosts ? 1 : 0;
      const a = await ps.tcpOut(0, 42210, x1, 443, F_SYN, C_ISN, 0);
      const ma = mapped(a, ps);
      if (ma === null) out['5382-REQ-8'] = { verdict: 'fail', evidence: `SYN not translated: ${a.fate()}` };
      else {
        const h = await ps.tcpOut(b, 42211, ps.topo.external, ma, F_SYN, 3000, 0);
        const ok = deliveredTo(h, ps.hostPoint(0), 42210);
        out['5382-REQ-8'] = {
          verdict: ok ? 'pass' : 'fail',
          evidence: `${ep(ps.hostIp(0), 42210)} mapped to ${ep(ps.topo.external, ma)}; SYN from ${ps.hostName(b)} ${ep(ps.hostIp(b), 42211)} to it ${h.fate()}`,
        };
      }
    }
    // An ICMP host unreachable about an established connection does not end it.
    {
      const ps = await ctx.fresh();
      const h = await handshake(ps, 42220, 443);
      const seenAck = h.m === null ? null : await ps.tcpOut(0, 42220, x1, 443, F_ACK, C_ISN + 1, S_ISN + 1);
      const q = seenAck ? outFrame(seenAck) : null;
      if (h.m === null || !q)
        out['5382-REQ-10'] = { verdict: 'fail', evidence: `handshake failed: ${h.log || ps.log.join('; ')}` };
      else {
        const err = await ps.icmpErrorIn(x1, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, q);
        const data = await ps.tcpIn(x1, 443, h.m, F_ACK, S_ISN + 1, C_ISN + 1);
        const e = await ps.entry(PROTO_TCP, ps.hostIp(0), 42220);
        out['5382-REQ-10'] = {
          verdict: deliveredTo(data, ps.hostPoint(0), 42220) && e?.state === 'ESTABLISHED' ? 'pass' : 'fail',
          evidence: `established :${h.m}; host unreachable about it ${err.fate()}; then an ACK from ${ep(x1, 443)} ${data.fate()}; conntrack ${e?.state ?? 'none'}`,
        };
      }
    }
    return out;
  },
};

export const PROBES: readonly Probe[] = [
  udpMapping,
  portAssignment,
  udpTimers,
  udpRefresh,
  udpFiltering,
  hairpin,
  icmpErrors,
  fragments,
  tcpMapping,
  tcpSimultaneousOpen,
  tcpFiltering,
  tcpUnsolicitedSyn,
  tcpTimers,
  tcpMore,
  icmpQuery,
  tcpRst,
  noRefreshFromErrors,
];
