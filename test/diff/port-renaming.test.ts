// PortRenaming keyed by numbers (port-table.ts) against the string-keyed maps it replaced: random
// sequences of binds, lookups both ways, renamings of frames and the report's description must
// give exactly what the old implementation gave (the reference below is its code, kept here).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PortRenaming } from '../../src/diff/compare/compare.ts';
import { PortTable, SIDE_A2B } from '../../src/diff/compare/port-table.ts';
import { formatIpv4 } from '../../src/packet/addr.ts';
import { buildTcp, buildUdp, F_SYN, parseIpv4Addr as ip } from '../../src/packet/index.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../src/packet/constants.ts';
import { loadOpenScenario } from '../../src/scenario/index.ts';

const scenario = loadOpenScenario();

function protoText(p: number): string {
  return p === PROTO_TCP ? 'tcp' : p === PROTO_UDP ? 'udp' : p === PROTO_ICMP ? 'icmp' : `proto ${p}`;
}

/** The string-keyed PortRenaming bindings as they were (bind, lookups, describe). */
class StringRenaming {
  private readonly a2b = new Map<string, Map<number, number>>();
  private readonly b2a = new Map<string, Map<number, number>>();
  renamed = 0;
  rebound = 0;
  constructor(
    private readonly ranges: PortRenaming,
    readonly exact: boolean,
  ) {}
  canon(a: number): number {
    return this.ranges.canon(a);
  }
  private key(proto: number, addr: number, otherAddr: number, otherPort: number): string {
    return `${proto}|${this.canon(addr)}|${this.canon(otherAddr)}|${otherPort}`;
  }
  lookup(proto: number, addr: number, port: number, otherAddr: number, otherPort: number): number | undefined {
    return this.a2b.get(this.key(proto, addr, otherAddr, otherPort))?.get(port);
  }
  lookupReverse(proto: number, addr: number, portB: number, otherAddr: number, otherPort: number): number | undefined {
    return this.b2a.get(this.key(proto, addr, otherAddr, otherPort))?.get(portB);
  }
  bind(proto: number, addr: number, pA: number, otherAddr: number, otherPort: number, pB: number, fresh: boolean) {
    const k = this.key(proto, addr, otherAddr, otherPort);
    let ab = this.a2b.get(k);
    let ba = this.b2a.get(k);
    const x = ab?.get(pA);
    const y = ba?.get(pB);
    if (x === pB) return null;
    const where = `${protoText(proto)} ${formatIpv4(this.canon(addr))} (peer ${formatIpv4(this.canon(otherAddr))}${proto === PROTO_ICMP ? '' : `:${otherPort}`})`;
    if ((x !== undefined || y !== undefined) && !fresh) {
      if (x !== undefined)
        return { message: `${where}: port ${pA} was renamed to ${x} earlier in this session, now to ${pB}` };
      return {
        message: `${where}: the other engine's port ${pB} stood for ${y} earlier in this session, now for ${pA}`,
      };
    }
    if (this.exact && pA !== pB)
      return {
        message: `${where}: port choices differ (${pA} vs ${pB}) where both engines draw from the same generator (a port-search divergence)`,
      };
    const rp = this.ranges.rangeProblem(proto, pA, pB, addr);
    if (rp) return { message: `${where}: ${rp}` };
    if (!ab) this.a2b.set(k, (ab = new Map()));
    if (!ba) this.b2a.set(k, (ba = new Map()));
    if (x !== undefined) {
      ba.delete(x);
      ab.delete(pA);
      this.rebound++;
    }
    if (y !== undefined) {
      ab.delete(y);
      ba.delete(pB);
      this.rebound++;
    }
    ab.set(pA, pB);
    ba.set(pB, pA);
    if (pA !== pB) this.renamed++;
    return null;
  }
  describe(limit = 20): string[] {
    const lines: string[] = [];
    for (const [k, m] of this.a2b) {
      const [proto, addr, other, op] = k.split('|').map(Number);
      for (const [a, b] of m) {
        if (a === b) continue;
        if (lines.length >= limit) return lines;
        lines.push(
          `${protoText(proto)} ${formatIpv4(addr)} (peer ${formatIpv4(other)}${proto === PROTO_ICMP ? '' : `:${op}`}): ${a} ↔ ${b}`,
        );
      }
    }
    return lines;
  }
}

// Small value spaces so that binds collide, rebind and conflict often.
const ADDRS = [ip('10.0.1.10'), ip('10.0.0.10'), ip('203.0.113.10'), ip('198.51.100.7'), ip('255.1.2.3')];
const PORTS = [53, 80, 511, 600, 1024, 1025, 40000, 65535];
const op = fc.record({
  kind: fc.constantFrom('bind', 'lookup', 'reverse', 'frame'),
  proto: fc.constantFrom(PROTO_TCP, PROTO_UDP, PROTO_ICMP, 47),
  addr: fc.constantFrom(...ADDRS),
  other: fc.constantFrom(...ADDRS),
  otherPort: fc.constantFrom(0, 53, 443),
  pA: fc.constantFrom(...PORTS),
  pB: fc.constantFrom(...PORTS),
  fresh: fc.boolean(),
});

describe('PortRenaming keyed by numbers', () => {
  it('binds, looks up, renames frames and describes exactly as the string-keyed maps did', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 20, maxLength: 300, size: 'max' }), fc.boolean(), (ops, exact) => {
        const neu = new PortRenaming(scenario, exact);
        const old = new StringRenaming(new PortRenaming(scenario), exact);
        for (const o of ops) {
          if (o.kind === 'bind') {
            expect(neu.bind(o.proto, o.addr, o.pA, o.other, o.otherPort, o.pB, o.fresh)).toEqual(
              old.bind(o.proto, o.addr, o.pA, o.other, o.otherPort, o.pB, o.fresh),
            );
          } else if (o.kind === 'lookup') {
            expect(neu.lookup(o.proto, o.addr, o.pA, o.other, o.otherPort)).toBe(
              old.lookup(o.proto, o.addr, o.pA, o.other, o.otherPort),
            );
          } else if (o.kind === 'reverse') {
            expect(neu.lookupReverse(o.proto, o.addr, o.pB, o.other, o.otherPort)).toBe(
              old.lookupReverse(o.proto, o.addr, o.pB, o.other, o.otherPort),
            );
          } else {
            // A frame's ports renamed: the old answer, from the old maps, port by port.
            const f =
              o.proto === PROTO_TCP
                ? buildTcp({ src: o.addr, dst: o.other, sport: o.pA, dport: o.otherPort, flags: F_SYN })
                : buildUdp({ src: o.addr, dst: o.other, sport: o.pA, dport: o.otherPort });
            const proto = o.proto === PROTO_TCP ? PROTO_TCP : PROTO_UDP;
            const r = neu.renameFrame(f);
            const want = old.lookup(proto, o.addr, o.pA, o.other, o.otherPort) ?? o.pA;
            expect((r[20] << 8) | r[21]).toBe(want);
            expect(neu.renameFrameReverse(f).length).toBe(f.length);
          }
        }
        expect(neu.renamed).toBe(old.renamed);
        expect(neu.rebound).toBe(old.rebound);
        expect(neu.describe(1000)).toEqual(old.describe(1000));
        expect(neu.describe(3)).toEqual(old.describe(3));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps every binding through growth and deletions (table of 20,000 bindings)', () => {
    const t = new PortTable();
    const ref = new Map<string, number>();
    let s = 12345;
    const rnd = (n: number) => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return (s >>> 8) % n;
    };
    for (let k = 0; k < 60000; k++) {
      const addr = 0xc0000000 + rnd(64);
      const other = rnd(16);
      const port = rnd(4096);
      const key = `${addr}|${other}|${port}`;
      if (rnd(3) === 0) {
        t.delete(SIDE_A2B, PROTO_UDP, addr, other, 53, port);
        ref.delete(key);
      } else {
        t.set(SIDE_A2B, PROTO_UDP, addr, other, 53, port, k & 0xffff);
        ref.set(key, k & 0xffff);
      }
    }
    expect(ref.size).toBeGreaterThan(20000);
    for (const [key, v] of ref) {
      const [addr, other, port] = key.split('|').map(Number);
      expect(t.get(SIDE_A2B, PROTO_UDP, addr, other, 53, port)).toBe(v);
    }
    expect(t.get(SIDE_A2B, PROTO_UDP, 0xc0000000, 99, 53, 1)).toBe(-1);
    expect(t.bindings().length).toBe(ref.size);
  });
});
