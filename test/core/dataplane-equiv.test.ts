// The core Dataplane (one worker, driven directly) against the reference model (used as a black
// box through the Engine contract) on the built-in scenario: a seeded mix of TCP lifecycles, UDP,
// ICMP echo, ICMP errors, TTL 1, bad checksums, INVALID TCP flags and expiry gaps. Without port
// clashes Linux preserves every port, so outputs must be byte-identical (generated ICMP errors'
// IP id excepted) and the conntrack tables equal.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadOpenScenario, parseNatTable } from '../../src/scenario/index.ts';

const DNAT_RULES = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 10.0.1.10:80
-A PREROUTING -p udp --dport 5353 -j DNAT --to-destination 10.0.1.10:53
-A POSTROUTING -s 10.0.0.0/16 -o eth0 -j MASQUERADE
COMMIT
`;
import { createModelEngine } from '../../src/model/index.ts';
import {
  buildIcmpEcho,
  buildIcmpError,
  buildTcp,
  buildUdp,
  describePacket,
  fixChecksums,
  parseIpv4,
  PacketView,
  PARSE_OK,
  parseIpv4Addr as ip,
  F_ACK,
  F_FIN,
  F_PSH,
  F_RST,
  F_SYN,
} from '../../src/packet/index.ts';
import type { PacketResult } from '../../src/spec/engine.ts';
import { POINT_INTERNET } from '../../src/spec/scenario.ts';
import { Harness } from './dataplane-harness.ts';
import { readNatCounters } from '../../src/core/ct-dump.ts';
import { WEB, APP, app, natIp, web, eip, webEip } from '../helpers/builtin.ts';

const rd32 = (b: Uint8Array, o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
const remotes = [ip('198.51.100.7'), ip('198.51.100.8'), ip('192.0.2.1')];

interface Op {
  kind: number;
  flow: number;
  flags: number;
  dt: number;
  ttl: number;
  corrupt: boolean;
}

const opArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.integer({ min: 0, max: 16 }),
  flow: fc.integer({ min: 0, max: 5 }),
  flags: fc.constantFrom(F_SYN, F_SYN | F_ACK, F_ACK, F_ACK | F_PSH, F_FIN | F_ACK, F_RST, F_RST | F_ACK, F_FIN, 0),
  dt: fc.constantFrom(0, 1, 10, 1500, 2500, 31000, 130000),
  ttl: fc.constantFrom(64, 64, 64, 1, 2),
  corrupt: fc.constant(false),
});

function frames(
  op: Op,
  last: { out: Uint8Array | null; inb: Uint8Array | null },
): { frame: Uint8Array; ingress: number } {
  const r = remotes[op.flow % remotes.length];
  const sport = 40000 + op.flow;
  const dport = [443, 53, 80][op.flow % 3];
  const ttl = op.ttl;
  switch (op.kind) {
    case 0:
    case 1:
      return { frame: buildTcp({ src: app, dst: r, sport, dport, flags: op.flags, ttl }), ingress: APP };
    case 2:
    case 3:
      return {
        frame: buildTcp({ src: r, dst: eip, sport: dport, dport: sport, flags: op.flags, ttl }),
        ingress: POINT_INTERNET,
      };
    case 4:
      return {
        frame: buildUdp({ src: app, dst: r, sport, dport, ttl, payload: new Uint8Array(op.flow + 1) }),
        ingress: APP,
      };
    case 5:
      return { frame: buildUdp({ src: r, dst: eip, sport: dport, dport: sport, ttl }), ingress: POINT_INTERNET };
    case 6:
      return { frame: buildIcmpEcho({ src: app, dst: r, id: 100 + op.flow, seq: 1, ttl }), ingress: APP };
    case 7:
      return {
        frame: buildIcmpEcho({ src: r, dst: eip, id: 100 + op.flow, seq: 1, reply: true, ttl }),
        ingress: POINT_INTERNET,
      };
    case 8:
      if (last.out)
        return {
          frame: buildIcmpError({ src: remotes[2], dst: eip, type: 3, code: 3, quoted: last.out }),
          ingress: POINT_INTERNET,
        };
      return { frame: buildUdp({ src: app, dst: r, sport, dport, ttl }), ingress: APP };
    case 9: {
      const f = buildUdp({ src: app, dst: r, sport, dport, ttl, payload: new Uint8Array([1, 2, 3]) });
      f[f.length - 1] ^= 0xff; // bad UDP checksum → INVALID
      return { frame: f, ingress: APP };
    }
    case 10:
      return { frame: buildUdp({ src: web, dst: r, sport: 8000 + op.flow, dport, ttl }), ingress: WEB };
    case 11:
      return {
        frame: buildTcp({ src: r, dst: webEip, sport: dport, dport: 80, flags: op.flags, ttl }),
        ingress: POINT_INTERNET,
      };
    // Port forwarding (DNAT variant): client → EIP:8080 (→ app:80), app:80 → client; UDP 5353 → app:53.
    case 12:
      return {
        frame: buildTcp({ src: r, dst: eip, sport: 30000 + op.flow, dport: 8080, flags: op.flags, ttl }),
        ingress: POINT_INTERNET,
      };
    case 13:
      return {
        frame: buildTcp({ src: app, dst: r, sport: 80, dport: 30000 + op.flow, flags: op.flags, ttl }),
        ingress: APP,
      };
    case 16:
      // The app answers the last packet it received from the internet with an ICMP error.
      if (last.inb)
        return {
          frame: buildIcmpError({ src: app, dst: rd32(last.inb, 12), type: 3, code: 3, quoted: last.inb, ttl }),
          ingress: APP,
        };
      return { frame: buildUdp({ src: app, dst: r, sport, dport, ttl }), ingress: APP };
    case 14:
      return {
        frame: buildUdp({ src: r, dst: eip, sport: 30000 + op.flow, dport: 5353, ttl }),
        ingress: POINT_INTERNET,
      };
    default:
      return { frame: buildUdp({ src: app, dst: r, sport: 53, dport: 30000 + op.flow, ttl }), ingress: APP };
  }
}

function show(r: PacketResult): string {
  const o = r.outputs.map(
    (x) => `${x.egress}:${describePacket(x.frame, 0, x.frame.length)}:${Buffer.from(x.frame).toString('hex')}`,
  );
  return `fate=${r.fate} reason=${r.reason} detail=${r.detail} ct=${r.ct} ${o.join(' | ')}`;
}

/**
 * Port renaming between the engines (Linux picks searched ports at random): NAT-side ports/ids
 * (key proto * 65536 + port) seen on packets leaving with the NAT's EIP as source.
 */
class Renaming {
  /** Per session (proto, remote address, remote port, NAT-side port) → the other engine's NAT-side port. */
  c2m = new Map<string, number>();
  m2c = new Map<string, number>();
  private pv = new PacketView();
  static key(proto: number, remote: number, rport: number, nat: number): string {
    return `${proto}|${remote}|${proto === 1 ? 0 : rport}|${nat}`;
  }
  /** The session key of an outbound frame from the EIP, or null. */
  natKey(f: Uint8Array): { key: string; port: number } | null {
    const pv = this.pv;
    if (parseIpv4(f, 0, f.length, pv) !== PARSE_OK || pv.src !== eip) return null;
    if (pv.proto === 6 || pv.proto === 17)
      return { key: Renaming.key(pv.proto, pv.dst, pv.dport, pv.sport), port: pv.sport };
    if (pv.proto === 1 && pv.icmpType === 8) return { key: Renaming.key(1, pv.dst, 0, pv.icmpId), port: pv.icmpId };
    return null;
  }
  /** Rewrites the NAT-side port of f (src side if out, dst side if in) through map. */
  rewrite(f: Uint8Array, out: boolean, map: Map<string, number>): Uint8Array {
    const pv = this.pv;
    if (parseIpv4(f, 0, f.length, pv) !== PARSE_OK) return f;
    const g = f.slice();
    if (out && pv.src === eip) {
      if (pv.proto === 6 || pv.proto === 17) {
        const n = map.get(Renaming.key(pv.proto, pv.dst, pv.dport, pv.sport));
        if (n !== undefined) {
          g[pv.l4Off] = (n & 0xffff) >>> 8;
          g[pv.l4Off + 1] = n & 0xff;
          return fixChecksums(g);
        }
      } else if (pv.proto === 1 && pv.icmpType === 8) {
        const n = map.get(Renaming.key(1, pv.dst, 0, pv.icmpId));
        if (n !== undefined) {
          g[pv.l4Off + 4] = (n & 0xffff) >>> 8;
          g[pv.l4Off + 5] = n & 0xff;
          return fixChecksums(g);
        }
      }
    } else if (!out && pv.dst === eip) {
      if (pv.proto === 6 || pv.proto === 17) {
        const n = map.get(Renaming.key(pv.proto, pv.src, pv.sport, pv.dport));
        if (n !== undefined) {
          g[pv.l4Off + 2] = (n & 0xffff) >>> 8;
          g[pv.l4Off + 3] = n & 0xff;
          return fixChecksums(g);
        }
      } else if (pv.proto === 1 && pv.icmpType === 0) {
        const n = map.get(Renaming.key(1, pv.src, 0, pv.icmpId));
        if (n !== undefined) {
          g[pv.l4Off + 4] = (n & 0xffff) >>> 8;
          g[pv.l4Off + 5] = n & 0xff;
          return fixChecksums(g);
        }
      }
    }
    return f;
  }
  /** Remote-side ports a SRC null binding moved on a clash (seen on frames delivered inside). */
  rc2m = new Map<number, number>();
  private remoteKey(f: Uint8Array): number {
    const pv = this.pv;
    if (parseIpv4(f, 0, f.length, pv) !== PARSE_OK || (pv.proto !== 6 && pv.proto !== 17)) return -1;
    if (((pv.src >>> 16) & 0xffff) === 0x0a00) return -1; // inside the VPC
    return pv.proto * 65536 + pv.sport;
  }
  learn(c: PacketResult, m: PacketResult): void {
    for (let k = 0; k < Math.min(c.outputs.length, m.outputs.length); k++) {
      if (c.outputs[k].egress !== POINT_INTERNET && c.outputs[k].egress === m.outputs[k].egress) {
        const rc = this.remoteKey(c.outputs[k].frame);
        const rm = this.remoteKey(m.outputs[k].frame);
        if (rc >= 0 && rm >= 0 && rc !== rm && !this.rc2m.has(rc)) this.rc2m.set(rc, rm);
      }
      const kc = this.natKey(c.outputs[k].frame);
      const km = this.natKey(m.outputs[k].frame);
      if (kc && km) {
        this.c2m.set(kc.key, km.port);
        this.m2c.set(km.key, kc.port);
      }
    }
  }
  /** ICMP errors quoting a NAT-side port (inner source = the NAT's address): rename the quoted port. */
  innerRewrite(f: Uint8Array): Uint8Array {
    const pv = this.pv;
    if (parseIpv4(f, 0, f.length, pv) !== PARSE_OK || !pv.isIcmpError) return f;
    if ((pv.innerSrc !== eip && pv.innerSrc !== natIp) || (pv.innerProto !== 6 && pv.innerProto !== 17)) return f;
    const n = this.c2m.get(Renaming.key(pv.innerProto, pv.innerDst, pv.innerDport, pv.innerSport));
    if (n === undefined) return f;
    const g = f.slice();
    g[pv.innerL4Off] = (n & 0xffff) >>> 8;
    g[pv.innerL4Off + 1] = n & 0xff;
    g[pv.innerL4Off + 6] = 0;
    g[pv.innerL4Off + 7] = 0;
    g[pv.l4Off + 2] = 0;
    g[pv.l4Off + 3] = 0;
    return g;
  }
  /** Frames delivered inside: a renamed remote source port back to the model's. */
  remoteRewrite(f: Uint8Array): Uint8Array {
    const k = this.remoteKey(f);
    const n = k >= 0 ? this.rc2m.get(k) : undefined;
    if (n === undefined) return f;
    const pv = this.pv;
    parseIpv4(f, 0, f.length, pv);
    const g = f.slice();
    g[pv.l4Off] = (n & 0xffff) >>> 8;
    g[pv.l4Off + 1] = n & 0xff;
    return fixChecksums(g);
  }
  normalize(c: PacketResult): PacketResult {
    return {
      ...c,
      outputs: c.outputs.map((o) => ({
        egress: o.egress,
        frame:
          o.egress === POINT_INTERNET
            ? this.rewrite(o.frame, true, this.c2m)
            : this.remoteRewrite(this.innerRewrite(o.frame)),
      })),
    };
  }
  /** The model's side of innerRewrite (same checksum blanking, no renaming). */
  blank(m: PacketResult): PacketResult {
    return {
      ...m,
      outputs: m.outputs.map((o) => {
        const pv = this.pv;
        const f = o.frame;
        if (o.egress === POINT_INTERNET || parseIpv4(f, 0, f.length, pv) !== PARSE_OK || !pv.isIcmpError) return o;
        if ((pv.innerSrc !== eip && pv.innerSrc !== natIp) || (pv.innerProto !== 6 && pv.innerProto !== 17)) return o;
        if (!this.m2c.has(Renaming.key(pv.innerProto, pv.innerDst, pv.innerDport, pv.innerSport))) return o;
        const g = f.slice();
        g[pv.innerL4Off + 6] = 0;
        g[pv.innerL4Off + 7] = 0;
        g[pv.l4Off + 2] = 0;
        g[pv.l4Off + 3] = 0;
        return { egress: o.egress, frame: g };
      }),
    };
  }
}

describe('dataplane vs model (black box) on the built-in scenario', () => {
  for (const [max, workers, dnat, layout] of [
    [262144, 1, 0, 'record'],
    [3, 1, 0, 'record'],
    [262144, 2, 0, 'record'],
    [262144, 1, 1, 'record'],
    [262144, 2, 1, 'record'],
    [262144, 1, 0, 'line'],
    [3, 1, 0, 'line'],
    [262144, 2, 1, 'line'],
  ] as const)
    it(`same results, same conntrack table, same nat counters (up to NAT port renaming), conntrack max ${max}, ${workers} worker(s)${dnat ? ', DNAT port forwarding' : ''}, layout ${layout}`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), async (ops) => {
          const scenario = loadOpenScenario();
          scenario.conntrack.max = max;
          if (dnat) scenario.instances[0].nat = parseNatTable(DNAT_RULES, 'equiv-dnat');
          const model = createModelEngine(scenario, { seed: 1 });
          const h = new Harness(scenario, { workers, layout });
          const ren = new Renaming();
          let tMs = 1;
          const lastM = { out: null as Uint8Array | null, inb: null as Uint8Array | null };
          const lastC = { out: null as Uint8Array | null, inb: null as Uint8Array | null };
          for (const op of ops) {
            tMs += op.dt;
            const { frame, ingress } = frames(op, lastM);
            const [m] = await model.process([{ timeUs: tMs * 1000, ingress, frame }]);
            let cframe = op.kind === 8 || op.kind === 16 ? frames(op, lastC).frame : frame;
            if (ingress === POINT_INTERNET && op.kind !== 8) cframe = ren.rewrite(cframe, false, ren.m2c);
            const c = h.send(cframe, ingress, tMs);
            ren.learn(c, m);
            expect(
              show(ren.normalize(c)),
              `op ${JSON.stringify(op)} at ${tMs} ms: ${describePacket(frame, 0, frame.length)}`,
            ).toBe(show(ren.blank(m)));
            const om = m.outputs.find((o) => o.egress === POINT_INTERNET);
            const oc = c.outputs.find((o) => o.egress === POINT_INTERNET);
            if (om && oc && om.frame[9] !== 1) {
              lastM.out = om.frame;
              lastC.out = oc.frame;
            }
            const im = m.outputs.find((o) => o.egress === APP);
            const ic = c.outputs.find((o) => o.egress === APP);
            if (ingress === POINT_INTERNET && im && ic && im.frame[9] !== 1) {
              lastM.inb = im.frame;
              lastC.inb = ic.frame;
            }
          }
          const mct = (await model.conntrack()).map((e) => JSON.stringify(e)).sort();
          const cct = h
            .conntrack(tMs)
            .map((e) => {
              const n = ren.c2m.get(
                Renaming.key(e.proto, e.reply.src, e.reply.sport, e.proto === 1 ? e.reply.sport : e.reply.dport),
              );
              const rn =
                e.proto !== 1 && ((e.reply.dst >>> 16) & 0xffff) !== 0x0a00
                  ? ren.rc2m.get(e.proto * 65536 + e.reply.dport)
                  : undefined;
              if (rn !== undefined) return JSON.stringify({ ...e, reply: { ...e.reply, dport: rn & 0xffff } });
              if (n === undefined) return JSON.stringify(e);
              return JSON.stringify(
                e.proto === 1 ? { ...e, reply: { ...e.reply, sport: n } } : { ...e, reply: { ...e.reply, dport: n } },
              );
            })
            .sort();
          expect(cct).toEqual(mct);
          const mn = (await model.natCounters()).map((e) => JSON.stringify(e)).sort();
          const cn = readNatCounters(h.shared)
            .map((e) => JSON.stringify(e))
            .sort();
          expect(cn).toEqual(mn);
          await model.close();
        }),
        { numRuns: 150, seed: Number(process.env.EQUIV_SEED ?? 4242) },
      );
    });
});
