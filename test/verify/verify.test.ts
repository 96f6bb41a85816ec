// natlab verify on golden pairs played by the model (the fast tier; test/verify/kernel.test.ts
// builds them with the real kernel): an unchanged pair verifies, each perturbation of the outside
// capture is reported as its own kind of difference, a box with MSS clamping is named as such
// until the scenario says so, and the sides of a merged capture are found (by interface name, by
// address).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createModelEngine } from '../../src/model/index.ts';
import { readSplitSides, readTwoSides, runVerify, type VerifyReport } from '../../src/diff/verify/index.ts';
import { makeEngine } from '../../src/diff/engines.ts';
import { runInProcess } from '../helpers/cli.ts';
import { F_SYN, PROTO_TCP, buildUdp, parseIpv4Addr as ip, wr16 } from '../../src/packet/index.ts';
import type { Scenario } from '../../src/spec/scenario.ts';
import {
  INSIDE_NET,
  PUBLIC,
  boxScenario,
  dst,
  fixChecksums,
  makePair,
  perturbOutside,
  src,
  writePair,
  writeScenario,
} from './pairs.ts';

const CLAMP = '-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1400';

async function verifyDir(dir: string, scenario: Scenario | null = null): Promise<VerifyReport> {
  return runVerify({
    sides: await readTwoSides(join(dir, 'inside.pcap'), join(dir, 'outside.pcap')),
    inside: [{ addr: ip('192.168.0.0'), len: 16 }],
    scenario,
    engineName: 'model',
    windowUs: 2_000_000,
    makeEngine: (s) => makeEngine('model', s, { seed: 1 }),
  });
}

const plain = await makePair(createModelEngine(boxScenario()), boxScenario());
const plainDir = writePair(plain);

const isTcpSyn = (f: Uint8Array): boolean => f[9] === PROTO_TCP && (f[20 + 13] & F_SYN) !== 0;

describe('verify: the box is Linux with this config', () => {
  it('every frame from the box matches byte for byte', async () => {
    const r = await verifyDir(plainDir);
    expect(r.counts).toEqual({ identical: 24, differs: 0, 'predicted-not-seen': 0, 'seen-not-predicted': 0 });
    expect(r.findings).toEqual([]);
    expect(r.publicAddr).toBe('203.0.113.5');
    expect(r.sides.inside).toMatchObject({ inputs: 14, outputs: 10 });
    expect(r.sides.outside).toMatchObject({ inputs: 10, outputs: 14 });
  });

  it('the CLI: exit 0, and the sides of a merged capture split by address or by pcapng interface names', async () => {
    const a = await runInProcess([
      'verify',
      '--inside',
      join(plainDir, 'inside.pcap'),
      '--outside',
      join(plainDir, 'outside.pcap'),
    ]);
    expect(a.stdout).toMatch(/VERIFIED/);
    expect(a.code).toBe(0);
    const b = await runInProcess(['verify', '--in', join(plainDir, 'both.pcap'), '--inside', INSIDE_NET, '--json']);
    expect(b.code).toBe(0);
    expect(JSON.parse(b.stdout).how).toMatch(/^by address/);
    const c = await runInProcess(['verify', '--in', join(plainDir, 'both.pcapng'), '--json']);
    expect(c.code).toBe(0);
    expect(JSON.parse(c.stdout).how).toBe('by pcapng interface name (inside = inside, outside = outside)');
    const sides = await readSplitSides(join(plainDir, 'both.pcap'), [{ addr: ip('192.168.0.0'), len: 16 }]);
    expect(sides.frames.map((f) => f.length)).toEqual([plain.inside.length, plain.outside.length]);
  });

  it('refuses what it cannot split or read, with the reason (exit 2)', async () => {
    const a = await runInProcess(['verify', '--in', join(plainDir, 'both.pcap')]);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/needs --inside CIDRS/);
    const b = await runInProcess([
      'verify',
      '--inside',
      join(plainDir, 'inside.pcap'),
      '--outside',
      join(plainDir, 'inside.pcap'),
    ]);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/outside address/);
    const c = await runInProcess(['verify', '--inside', join(plainDir, 'inside.pcap')]);
    expect(c.code).toBe(2);
  });
});

describe('verify: each perturbation of the outside capture is its own kind of difference', () => {
  it('a dropped frame is predicted, not seen', async () => {
    let dropped = false;
    const p = perturbOutside(plain, (f) => {
      if (!dropped && src(f) === PUBLIC && f[9] === 17) {
        dropped = true;
        return null;
      }
      return f;
    });
    const r = await verifyDir(writePair(p));
    expect(r.counts).toMatchObject({ identical: 23, 'predicted-not-seen': 1, 'seen-not-predicted': 0, differs: 0 });
    expect(r.packets.find((x) => x.kind === 'predicted-not-seen')?.predicted).toMatch(
      /udp 203\.0\.113\.5:53000 > 192\.0\.2\.53:53/,
    );
  });

  it('a port changed in one frame is a field difference (tcp.sport)', async () => {
    let done = false;
    const p = perturbOutside(plain, (f) => {
      if (!done && src(f) === PUBLIC && f[9] === PROTO_TCP && !isTcpSyn(f)) {
        done = true;
        wr16(f, 20, 41234);
        return fixChecksums(f);
      }
      return f;
    });
    const r = await verifyDir(writePair(p));
    expect(r.counts).toMatchObject({ differs: 1, 'predicted-not-seen': 0, 'seen-not-predicted': 0 });
    const d = r.packets.find((x) => x.kind === 'differs')!;
    expect(d.fields.filter((f) => !f.derived).map((f) => [f.field, f.predicted, f.real])).toEqual([
      ['tcp.sport', '40000', '41234'],
    ]);
  });

  it('randomised ports are learnt as a renaming and named, not counted as differences', async () => {
    // Every flow's public port moved (consistently, both directions): the box chose other ports.
    const moved = new Map([
      [40000, 61001],
      [53000, 61002],
      [77, 61003],
      [40001, 61004],
    ]);
    const p = perturbOutside(plain, (f) => {
      const at = src(f) === PUBLIC ? 20 : dst(f) === PUBLIC ? 22 : -1;
      if (at < 0) return f;
      const off = f[9] === 1 ? 24 : at; // ICMP: the echo id
      const v = (f[off] << 8) | f[off + 1];
      const n = moved.get(v);
      if (n === undefined) return f;
      wr16(f, off, n);
      return fixChecksums(f);
    });
    const r = await verifyDir(writePair(p));
    expect(r.counts).toEqual({ identical: 24, differs: 0, 'predicted-not-seen': 0, 'seen-not-predicted': 0 });
    expect(r.renamedFlows).toBe(4);
    expect(r.findings.map((f) => f.what)).toEqual([
      expect.stringMatching(/other ports than Linux in 4 of 4 flow\(s\) \(ports randomised/),
    ]);
    expect(r.findings[0].suggestion).toMatch(/--random-fully/);
  });

  it('an MSS option added is a tcp.mss difference and the clamping is named with the rule to add', async () => {
    const p = perturbOutside(plain, (f) => {
      if (src(f) !== PUBLIC || !isTcpSyn(f) || f[20 + 12] >> 4 !== 5) return f;
      // The box inserted MSS 1400 into the option-less SYN (as an old kernel's TCPMSS would).
      const g = new Uint8Array(f.length + 4);
      g.set(f.subarray(0, 40));
      g.set([2, 4, 0x05, 0x78], 40);
      g.set(f.subarray(40), 44);
      g[32] = 0x60;
      wr16(g, 2, g.length);
      return fixChecksums(g);
    });
    const r = await verifyDir(writePair(p));
    expect(r.counts).toMatchObject({ differs: 1, 'predicted-not-seen': 0, 'seen-not-predicted': 0 });
    const d = r.packets.find((x) => x.kind === 'differs')!;
    expect(d.fields.filter((f) => !f.derived).map((f) => f.field)).toEqual(['tcp.mss']);
    expect(r.findings[0].what).toMatch(/^MSS clamped to 1400 on SYNs \(0 lowered, 1 inserted\)/);
    expect(r.findings[0].suggestion).toMatch(/TCPMSS --set-mss 1400/);
  });

  it('frames outside the window both captures cover are reported, not counted', async () => {
    // The inside capture started 10 s earlier: a query then has no outside capture to be seen in.
    const early = buildUdp({
      src: ip('192.168.1.11'),
      dst: ip('192.0.2.53'),
      sport: 53999,
      dport: 53,
      payload: new Uint8Array(8),
    });
    const p = {
      inside: [{ timeUs: plain.inside[0].timeUs - 10_000_000, frame: early }, ...plain.inside],
      outside: plain.outside,
    };
    const r = await verifyDir(writePair(p));
    expect(r.counts).toEqual({ identical: 24, differs: 0, 'predicted-not-seen': 0, 'seen-not-predicted': 0 });
    expect(r.outsideWindow['predicted-not-seen']).toBe(1);
    expect(r.sides.inside.outsideWindow).toBe(1);
  });

  it('a TTL the box did not decrement is named', async () => {
    const p = perturbOutside(plain, (f) => (src(f) === PUBLIC ? fixChecksums(((f[8] += 1), f)) : f));
    const r = await verifyDir(writePair(p));
    expect(r.counts.differs).toBe(14);
    expect(r.findings.map((f) => f.what)).toContainEqual(expect.stringMatching(/^TTL not decremented \(14 frames\)/));
  });
});

describe('verify: a box that clamps the MSS (issue 13, done when)', async () => {
  const box = boxScenario([CLAMP]);
  const pair = await makePair(createModelEngine(box), box);
  const dir = writePair(pair);
  it('without the rule: the clamping is the only difference, with the rule to add', async () => {
    const r = await verifyDir(dir);
    // Both SYNs and both SYN/ACKs: MSS 1460 lowered to 1400, MSS 536 inserted where there was none.
    expect(r.counts).toMatchObject({ differs: 4, 'predicted-not-seen': 0, 'seen-not-predicted': 0 });
    for (const p of r.packets.filter((x) => x.kind === 'differs'))
      expect(p.fields.filter((f) => !f.derived).map((f) => f.field)).toEqual(['tcp.mss']);
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0].what).toMatch(/^MSS clamped to 1400 on SYNs \(2 lowered, 2 inserted\)/);
    expect(r.findings[0].suggestion).toMatch(/-j TCPMSS --set-mss 1400/);
  });
  it('with the rule in the scenario: every frame matches (the CLI exits 0)', async () => {
    const f = writeScenario(box, dir);
    const r = await runInProcess([
      'verify',
      '--inside',
      join(dir, 'inside.pcap'),
      '--outside',
      join(dir, 'outside.pcap'),
      '--scenario',
      f,
    ]);
    expect(r.stdout).toMatch(/VERIFIED/);
    expect(r.code).toBe(0);
    const without = await runInProcess([
      'verify',
      '--inside',
      join(dir, 'inside.pcap'),
      '--outside',
      join(dir, 'outside.pcap'),
    ]);
    expect(without.code).toBe(1);
    expect(without.stdout).toMatch(/MSS clamped to 1400 on SYNs/);
  });
});
