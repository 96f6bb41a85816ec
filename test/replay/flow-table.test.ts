// The numeric flow tables of replay against the string-keyed FlowMappings they replace: the same
// mappings, times and evictions for any sequence of operations (small key space: many collisions,
// re-learned and evicted flows), and the pending set's epochs.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FlowTable, PendingFlows, flowPorts } from '../../src/diff/replay/flow-table.ts';
import { FlowMappings, flowKey } from '../../src/diff/replay/remap.ts';

const op = fc.record({
  kind: fc.constantFrom('set', 'touch', 'get'),
  proto: fc.constantFrom(1, 6, 17),
  inside: fc.integer({ min: 0, max: 3 }).map((x) => (0x0a000100 + x) >>> 0),
  iport: fc.integer({ min: 0, max: 5 }),
  remote: fc.constantFrom(0xc6336407, 0xfffffffe),
  rport: fc.constantFrom(0, 443),
  addr: fc.constantFrom(0xcb00710a, 0xcb00710b),
  port: fc.integer({ min: 0, max: 3 }),
  t: fc.integer({ min: 0, max: 1e9 }),
});

describe('FlowTable', () => {
  it('behaves as FlowMappings: mappings, times, FIFO eviction (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.array(op, { maxLength: 300 }), (cap, ops) => {
        const ref = new FlowMappings(cap);
        const t = new FlowTable(cap);
        for (const o of ops) {
          const key = flowKey(o.proto, o.inside, o.iport, o.remote, o.rport);
          const ports = flowPorts(o.iport, o.rport);
          const e = t.find(o.proto, o.inside, ports, o.remote);
          if (o.kind === 'set') {
            ref.set(key, o.addr, o.port, o.t);
            t.set(o.proto, o.inside, ports, o.remote, o.addr, o.port, o.t);
          } else if (o.kind === 'touch') {
            ref.touch(key, o.t);
            if (e >= 0) t.touch(e, o.t);
          }
          const f = t.find(o.proto, o.inside, ports, o.remote);
          expect(f >= 0).toBe(ref.has(key));
          expect(f >= 0 ? t.mapping(f) : -1).toBe(ref.get(key));
          expect(f >= 0 ? t.lastUs(f) : -1).toBe(ref.lastUs(key));
          expect(t.size).toBe(ref.size);
          expect(t.evicted).toBe(ref.evicted);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('grows past its first allocation and keeps every mapping', () => {
    const t = new FlowTable(20000);
    for (let i = 0; i < 20000; i++) t.set(6, 0x0a000001, flowPorts(i, 443), 0x01020304, 0xcb00710a, i, i);
    expect(t.size).toBe(20000);
    for (let i = 0; i < 20000; i += 997) {
      const e = t.find(6, 0x0a000001, flowPorts(i, 443), 0x01020304);
      expect(e).toBeGreaterThanOrEqual(0);
      expect(t.mapping(e)).toBe(0xcb00710a * 65536 + i);
    }
    t.set(6, 0x0a000002, flowPorts(1, 443), 0x01020304, 0xcb00710a, 1, 1);
    expect(t.evicted).toBe(1);
    expect(t.find(6, 0x0a000001, flowPorts(0, 443), 0x01020304)).toBe(-1);
  });
});

describe('PendingFlows', () => {
  it('remembers the latest time per flow until cleared', () => {
    const p = new PendingFlows(8);
    expect(p.get(6, 1, 2, 3)).toBe(-1);
    p.set(6, 1, 2, 3, 10);
    p.set(6, 1, 2, 3, 20);
    p.set(17, 1, 2, 3, 5);
    expect(p.get(6, 1, 2, 3)).toBe(20);
    expect(p.get(17, 1, 2, 3)).toBe(5);
    p.clear();
    expect(p.get(6, 1, 2, 3)).toBe(-1);
    for (let i = 0; i < 8; i++) p.set(6, i, i, i, i);
    for (let i = 0; i < 8; i++) expect(p.get(6, i, i, i)).toBe(i);
  });
});
