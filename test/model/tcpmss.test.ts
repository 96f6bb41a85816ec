// TCPMSS (xt_TCPMSS.c) in the mangle table: the model's byte rewrite checked against a from-scratch
// checksum and the kernel's rules (never raise, insert min(mss, 536) only into a SYN without
// payload, drop an unreadable header), and the model against the core on random SYNs (random
// option lists, payloads, data offsets, both chains, --set-mss and --clamp-mss-to-pmtu): every
// output byte-identical. The kernel agrees on the cases in test/oracle/cases.ts.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createModelEngine } from '../../src/model/index.ts';
import { tcpmssPacket } from '../../src/model/tcpmss.ts';
import { createCoreEngine } from '../../src/core/engine.ts';
import {
  F_ACK,
  F_RST,
  F_SYN,
  PARSE_OK,
  PacketView,
  buildTcp,
  fixChecksums,
  parseIpv4,
  parseIpv4Addr as ip,
  tcpMss,
  verifyIpv4Header,
  verifyL4Checksum,
} from '../../src/packet/index.ts';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import { parseMangleTable } from '../../src/scenario/iptables-mangle.ts';
import { DROP_TCPMSS, FATE_DROPPED } from '../../src/spec/reasons.ts';
import { POINT_INTERNET, TCPMSS_CLAMP_PMTU, instancePoint, type Scenario } from '../../src/spec/scenario.ts';
import type { InputPacket } from '../../src/spec/engine.ts';

const mss = (n: number): Uint8Array => Uint8Array.of(2, 4, n >>> 8, n & 0xff);
const syn = (o: { options?: Uint8Array; payload?: Uint8Array; flags?: number } = {}): Uint8Array =>
  buildTcp({ src: ip('10.0.1.10'), dst: ip('198.51.100.7'), sport: 40000, dport: 443, seq: 1, flags: F_SYN, ...o });

function valid(b: Uint8Array): boolean {
  const pv = new PacketView();
  return parseIpv4(b, 0, b.length, pv) === PARSE_OK && verifyIpv4Header(b, pv) && verifyL4Checksum(b, pv);
}

describe('tcpmssPacket (xt_TCPMSS)', () => {
  it('lowers an MSS above the new value and keeps the checksums valid', () => {
    const o = tcpmssPacket(syn({ options: mss(1460) }), 1400);
    expect(tcpMss(o.pkt)).toBe(1400);
    expect(valid(o.pkt)).toBe(true);
    expect(o.note).toBe('MSS 1460→1400');
  });
  it('never raises an MSS, even with --set-mss', () => {
    const f = syn({ options: mss(1200) });
    const o = tcpmssPacket(f, 1400);
    expect(o.pkt).toBe(f);
    expect(o.note).toBe('');
  });
  it('clamp-mss-to-pmtu uses the ENI MTU 9001 − 40', () => {
    expect(tcpMss(tcpmssPacket(syn({ options: mss(9000) }), TCPMSS_CLAMP_PMTU).pkt)).toBe(8961);
  });
  it('inserts MSS min(new, 536) into a SYN without the option and without payload', () => {
    const f = syn();
    for (const [want, got] of [
      [1400, 536],
      [500, 500],
    ]) {
      const o = tcpmssPacket(f, want);
      expect(o.pkt.length).toBe(f.length + 4);
      expect(tcpMss(o.pkt)).toBe(got);
      expect(valid(o.pkt)).toBe(true);
    }
  });
  it('finds the option behind NOPs and other options; skips zero-length garbage one byte at a time', () => {
    const o = tcpmssPacket(syn({ options: Uint8Array.of(1, 1, 4, 2, 2, 4, 0x05, 0xb4) }), 1000);
    expect(tcpMss(o.pkt)).toBe(1000);
    expect(valid(o.pkt)).toBe(true);
  });
  it('leaves a SYN with payload and one with a 60-byte header alone', () => {
    const withData = syn({ payload: new Uint8Array(4) });
    expect(tcpmssPacket(withData, 1000).pkt).toBe(withData);
    const full = syn({ options: new Uint8Array(40).fill(1) });
    expect(tcpmssPacket(full, 1000).pkt).toBe(full);
  });
  it('drops a segment whose data offset is below 5 or beyond the segment', () => {
    for (const doff of [0x40, 0xf0]) {
      const f = syn();
      f[32] = doff;
      expect(tcpmssPacket(fixChecksums(f), 1000).drop).toBe(true);
    }
  });
});

function withMangle(rules: string[]): Scenario {
  const s = structuredClone(loadOpenScenario());
  const chains = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'].map((c) => `:${c} ACCEPT [0:0]`);
  const nat = s.instances.find((i) => i.name === 'nat')!;
  nat.mangle = parseMangleTable(['*mangle', ...chains, ...rules, 'COMMIT', ''].join('\n'), '<test>');
  return s;
}

const RULESETS = [
  ['-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu'],
  ['-A POSTROUTING -o eth0 -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1400'],
  [
    '-A FORWARD -s 10.0.1.0/24 -p tcp -m tcp --dport 443 --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1200',
    '-A FORWARD -p tcp -m tcp --sport 443 -j RETURN',
    '-A FORWARD -p tcp -m tcp --tcp-flags SYN SYN -j TCPMSS --set-mss 300',
    '-A POSTROUTING -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu',
  ],
];

const optionArb = fc.oneof(
  fc.integer({ min: 0, max: 65535 }).map((n) => [2, 4, n >>> 8, n & 0xff]),
  fc.constant([1]),
  fc.constant([4, 2]),
  fc.constant([0]),
  fc.constant([2, 0]), // zero length: optlen advances by one
  fc.uint8Array({ minLength: 0, maxLength: 6 }).map((a) => [8, a.length + 2, ...a]),
);
const frameArb = fc
  .record({
    opts: fc.array(optionArb, { maxLength: 6 }),
    payload: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 12 })),
    flags: fc.constantFrom(F_SYN, F_SYN, F_SYN | F_ACK, F_SYN | F_RST, F_ACK),
    doff: fc.oneof(
      { weight: 9, arbitrary: fc.constant(-1) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 15 }) },
    ),
    sport: fc.integer({ min: 30000, max: 30100 }),
    fromNet: fc.boolean(),
  })
  .map((r) => {
    const bytes = r.opts.flat().slice(0, 40);
    const f = buildTcp({
      src: r.fromNet ? ip('198.51.100.7') : ip('10.0.1.10'),
      dst: r.fromNet ? ip('203.0.113.10') : ip('198.51.100.7'),
      sport: r.fromNet ? 443 : r.sport,
      dport: r.fromNet ? r.sport : 443,
      seq: 1,
      flags: r.flags,
      options: Uint8Array.from(bytes),
      payload: r.payload ? new Uint8Array(r.payload).fill(7) : undefined,
    });
    if (r.doff >= 0) {
      f[32] = (r.doff << 4) | (f[32] & 0x0f);
      fixChecksums(f);
    }
    return { frame: f, ingress: r.fromNet ? POINT_INTERNET : instancePoint(2) };
  });

describe('TCPMSS: model and core agree byte for byte', () => {
  for (const [k, rules] of RULESETS.entries()) {
    it(`ruleset ${k + 1}: random SYNs, options, payloads and data offsets`, async () => {
      const s = withMangle(rules);
      expect(s.instances[2].name).toBe('app');
      await fc.assert(
        fc.asyncProperty(fc.array(frameArb, { minLength: 1, maxLength: 12 }), async (frames) => {
          const inputs: InputPacket[] = frames.map((f, i) => ({
            timeUs: i * 1000,
            ingress: f.ingress,
            frame: f.frame,
          }));
          const model = createModelEngine(s, { seed: 1 });
          const core = createCoreEngine(s, { inline: true, seed: 1 });
          try {
            const a = await model.process(inputs);
            const b = await core.process(inputs);
            for (let i = 0; i < inputs.length; i++) {
              expect([b[i].fate, b[i].reason, b[i].ct]).toEqual([a[i].fate, a[i].reason, a[i].ct]);
              expect(b[i].outputs.map((o) => [o.egress, Buffer.from(o.frame).toString('hex')])).toEqual(
                a[i].outputs.map((o) => [o.egress, Buffer.from(o.frame).toString('hex')]),
              );
            }
          } finally {
            await model.close();
            await core.close();
          }
        }),
        { numRuns: 150, seed: 13 + k },
      );
    });
  }

  it('a TCPMSS drop is reason tcpmss in both', async () => {
    const s = withMangle(RULESETS[0]);
    const f = syn();
    f[32] = 0xf0;
    const inputs = [{ timeUs: 0, ingress: instancePoint(2), frame: fixChecksums(f) }];
    for (const e of [createModelEngine(s), createCoreEngine(s, { inline: true })]) {
      const [r] = await e.process(inputs);
      await e.close();
      expect([r.fate, r.reason]).toEqual([FATE_DROPPED, DROP_TCPMSS]);
    }
  });
});
