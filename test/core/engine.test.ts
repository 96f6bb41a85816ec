// The core engine adapter on the built-in scenario: translations as docs/semantics.md says,
// 1 vs 2 workers, conntrack readable mid-run, clean exit after close().
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIcmpEcho, buildTcp, buildUdp } from '../../src/packet/build.ts';
import { verifyIpv4Header, verifyL4Checksum } from '../../src/packet/checksum.ts';
import { F_ACK, F_SYN, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../src/packet/constants.ts';
import { PARSE_OK, PacketView, parseIpv4 } from '../../src/packet/parse.ts';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import type { InputPacket, PacketResult } from '../../src/spec/engine.ts';
import { CT_ESTABLISHED, CT_NEW, FATE_DELIVERED, REASON_NONE } from '../../src/spec/reasons.ts';
import { POINT_INTERNET } from '../../src/spec/scenario.ts';
import { InputError } from '../../src/spec/errors.ts';
import { compareRuns } from '../../src/diff/compare/compare.ts';
import { type CoreEngine, createCoreEngine } from '../../src/core/engine.ts';
import { APP_IP, HOST, NAT_EIP, NAT_IP, mixedTraffic, point, snapshot } from './engine-traffic.ts';

const S = loadOpenScenario();
const APP = point(S, 'app');

function parse(frame: Uint8Array): PacketView {
  const pv = new PacketView();
  expect(parseIpv4(frame, 0, frame.length, pv)).toBe(PARSE_OK);
  expect(verifyIpv4Header(frame, pv)).toBe(true);
  expect(verifyL4Checksum(frame, pv)).toBe(true);
  return pv;
}

async function runAll(engine: CoreEngine, inputs: InputPacket[], chunk = inputs.length): Promise<PacketResult[]> {
  const out: PacketResult[] = [];
  for (let i = 0; i < inputs.length; i += chunk) out.push(...(await engine.process(inputs.slice(i, i + chunk))));
  return out;
}

describe.each([1, 2])('core engine, %i worker(s), built-in scenario', (workers) => {
  let engine: CoreEngine;
  beforeAll(() => {
    engine = createCoreEngine(S, { workers, seed: 1 });
  });
  afterAll(async () => {
    await engine.close();
  });

  it('translates UDP, TCP and ICMP echo flows out through the NAT instance and back', async () => {
    const t0 = 5_000_000;
    const inputs: InputPacket[] = [
      {
        timeUs: t0,
        ingress: APP,
        frame: buildUdp({ src: APP_IP, dst: HOST, sport: 40000, dport: 53, payload: new Uint8Array(12) }),
      },
      {
        timeUs: t0 + 1000,
        ingress: POINT_INTERNET,
        frame: buildUdp({ src: HOST, dst: NAT_EIP, sport: 53, dport: 40000, payload: new Uint8Array(30) }),
      },
      {
        timeUs: t0 + 2000,
        ingress: APP,
        frame: buildTcp({ src: APP_IP, dst: HOST, sport: 40001, dport: 443, flags: F_SYN, seq: 100 }),
      },
      {
        timeUs: t0 + 3000,
        ingress: POINT_INTERNET,
        frame: buildTcp({
          src: HOST,
          dst: NAT_EIP,
          sport: 443,
          dport: 40001,
          flags: F_SYN | F_ACK,
          seq: 900,
          ack: 101,
        }),
      },
      {
        timeUs: t0 + 4000,
        ingress: APP,
        frame: buildTcp({ src: APP_IP, dst: HOST, sport: 40001, dport: 443, flags: F_ACK, seq: 101, ack: 901 }),
      },
      { timeUs: t0 + 5000, ingress: APP, frame: buildIcmpEcho({ src: APP_IP, dst: HOST, id: 77, seq: 1 }) },
      {
        timeUs: t0 + 6000,
        ingress: POINT_INTERNET,
        frame: buildIcmpEcho({ src: HOST, dst: NAT_EIP, id: 77, seq: 1, reply: true }),
      },
    ];
    const before = snapshot(inputs);
    const res = await engine.process(inputs);
    expect(inputs.map((p) => p.frame)).toEqual(before); // never modifies the caller's bytes
    expect(res).toHaveLength(inputs.length);
    expect(res.map((r) => [r.fate, r.reason, r.outputs.length])).toEqual(
      inputs.map(() => [FATE_DELIVERED, REASON_NONE, 1]),
    );
    expect(res.map((r) => r.ct)).toEqual([
      CT_NEW,
      CT_ESTABLISHED,
      CT_NEW,
      CT_ESTABLISHED,
      CT_ESTABLISHED,
      CT_NEW,
      CT_ESTABLISHED,
    ]);
    const outs = res.map((r) => r.outputs[0]);
    expect(outs.map((o) => o.egress)).toEqual([
      POINT_INTERNET,
      APP,
      POINT_INTERNET,
      APP,
      POINT_INTERNET,
      POINT_INTERNET,
      APP,
    ]);
    const pvs = outs.map((o) => parse(o.frame));
    // Outbound: source = the NAT instance's Elastic IP, port preserved, TTL - 1 at the NAT hop.
    for (const k of [0, 2, 4, 5]) {
      expect(pvs[k].src >>> 0).toBe(NAT_EIP);
      expect(pvs[k].dst >>> 0).toBe(HOST);
      expect(pvs[k].ttl).toBe(63);
    }
    expect([pvs[0].proto, pvs[0].sport, pvs[0].dport]).toEqual([PROTO_UDP, 40000, 53]);
    expect([pvs[2].proto, pvs[2].sport, pvs[2].tcpFlags]).toEqual([PROTO_TCP, 40001, F_SYN]);
    expect([pvs[5].proto, pvs[5].icmpId]).toEqual([PROTO_ICMP, 77]);
    // Replies: destination = the app server's private address and original port.
    for (const k of [1, 3, 6]) {
      expect(pvs[k].dst >>> 0).toBe(APP_IP);
      expect(pvs[k].src >>> 0).toBe(HOST);
      expect(pvs[k].ttl).toBe(63);
    }
    expect(pvs[1].dport).toBe(40000);
    expect(pvs[3].dport).toBe(40001);
    expect(pvs[6].icmpId).toBe(77);
    // Payload bytes survive.
    expect(outs[1].frame.length).toBe(inputs[1].frame.length);

    const ct = await engine.conntrack();
    const tcp = ct.find((e) => e.proto === PROTO_TCP && e.orig.sport === 40001);
    expect(tcp).toMatchObject({ state: 'ESTABLISHED', assured: true, seenReply: true });
    expect(tcp!.reply).toEqual({ src: HOST, dst: NAT_IP, sport: 443, dport: 40001 });
    const udp = ct.find((e) => e.proto === PROTO_UDP && e.orig.sport === 40000);
    expect(udp).toMatchObject({ seenReply: true, assured: false, state: '' });
    expect(udp!.timeout).toBe(29); // 30 s from the reply, shown 4 ms later, floored
    expect(ct.find((e) => e.proto === PROTO_ICMP)).toMatchObject({ orig: { src: APP_IP, dst: HOST, sport: 77 } });

    const counters = await engine.natCounters();
    const masq = counters.find((c) => c.chain === 'POSTROUTING' && c.rule === 0);
    expect(masq).toMatchObject({
      packets: 3,
      bytes: inputs[0].frame.length + inputs[2].frame.length + inputs[5].frame.length,
    });
  });

  it('advance() expires idle entries (contract clock)', async () => {
    const before = (await engine.conntrack()).length;
    expect(before).toBeGreaterThan(1);
    expect(await engine.conntrackCount?.()).toBe(before);
    await engine.advance(5_000_000 + 6000 + 30_000_000); // ICMP and UDP entries: 30 s
    const after = await engine.conntrack();
    expect(after.map((e) => e.proto)).toEqual([PROTO_TCP]);
    // conntrackCount() applies the same liveness test as conntrack().
    expect(await engine.conntrackCount?.()).toBe(1);
  });

  it('rejects bad input with InputError before running any of it', async () => {
    const ok = {
      timeUs: 99_000_000,
      ingress: APP,
      frame: buildUdp({ src: APP_IP, dst: HOST, sport: 41000, dport: 53 }),
    };
    await expect(engine.process([ok, { ...ok, timeUs: 98_000_000 }])).rejects.toThrow(/time went backwards/);
    await expect(engine.process([{ ...ok, ingress: 99 }])).rejects.toThrow(InputError);
    expect((await engine.conntrack()).some((e) => e.orig.sport === 41000)).toBe(false);
  });
});

describe('core engine: 1 vs 2 workers', () => {
  it('gives identical outputs (up to port renaming) on a few thousand mixed packets', async () => {
    const inputs = mixedTraffic(S, 700, 11);
    expect(inputs.length).toBeGreaterThan(2500);
    const runs = [];
    for (const workers of [1, 2]) {
      const e = createCoreEngine(S, { workers, seed: 3, batchSize: 256 });
      try {
        const results = await runAll(e, inputs, 1000);
        runs.push({
          engine: `core-${workers}w`,
          results,
          conntrack: await e.conntrack(),
          counters: await e.natCounters(),
        });
        if (workers === 2) {
          // Both workers really took part.
          expect(e.pool!.packets(0)).toBeGreaterThan(inputs.length / 5);
          expect(e.pool!.packets(1)).toBeGreaterThan(inputs.length / 5);
        }
      } finally {
        await e.close();
      }
    }
    const cmp = compareRuns(inputs, runs[0], runs[1], { scenario: S });
    expect(cmp.differences.slice(0, 5)).toEqual([]);
    expect(cmp.equal).toBe(true);
    // Sanity: the traffic exercised delivery, NAT and drops.
    const fates = runs[0].results.map((r) => r.fate);
    expect(fates.filter((f) => f === FATE_DELIVERED).length).toBeGreaterThan(inputs.length * 0.9);
    expect(fates.some((f) => f !== FATE_DELIVERED)).toBe(true);
  });
});

describe('core engine: conntrack while workers run', () => {
  it('dumps the table from shared memory while a worker is held mid-batch', async () => {
    const inputs = mixedTraffic(S, 200, 5);
    const k = Math.floor(inputs.length / 2);
    let mid: Awaited<ReturnType<CoreEngine['conntrack']>> | null = null;
    let held: CoreEngine | null = null;
    const e = createCoreEngine(S, {
      workers: 1,
      seed: 1,
      batchSize: 64,
      faults: {
        holdAtPacket: k,
        onHold: async () => {
          mid = await held!.conntrack();
        },
      },
    });
    held = e;
    const ref = createCoreEngine(S, { workers: 1, seed: 1, batchSize: 64 });
    try {
      await e.process(inputs);
      expect(mid).not.toBeNull();
      // The reference processed exactly the packets before the held one.
      await ref.process(inputs.slice(0, k));
      const expected = await ref.conntrack();
      expect(expected.length).toBeGreaterThan(10);
      const key = (x: { proto: number; orig: { sport: number; src: number } }) =>
        `${x.proto}/${x.orig.src}/${x.orig.sport}`;
      expect(mid!.map(key).sort()).toEqual(expected.map(key).sort());
    } finally {
      await e.close();
      await ref.close();
    }
  });
});

describe('core engine: close()', () => {
  it('leaves no threads behind: a process that closes its engine exits by itself', () => {
    const child = fileURLToPath(new URL('./pool-close-child.ts', import.meta.url));
    const r = spawnSync(process.execPath, ['--import', 'tsx', child], { encoding: 'utf8', timeout: 60_000 });
    expect(r.error).toBeUndefined();
    expect(r.signal).toBeNull(); // not killed by the timeout
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/processed 2 packets with 2 workers; closed/);
  });
});

describe('core engine: inline (dataplane on the calling thread) vs worker threads', () => {
  it('gives identical results on a few thousand mixed packets', async () => {
    const inputs = mixedTraffic(S, 500, 17);
    const runs = [];
    for (const inline of [true, false]) {
      const e = createCoreEngine(
        S,
        inline ? { inline: true, seed: 5, batchSize: 256 } : { workers: 1, seed: 5, batchSize: 256 },
      );
      try {
        expect(e.pool === null).toBe(inline);
        const results = await runAll(e, inputs, 700);
        runs.push({
          engine: inline ? 'core-inline' : 'core-1w',
          results,
          conntrack: await e.conntrack(),
          counters: await e.natCounters(),
        });
      } finally {
        await e.close();
      }
    }
    const cmp = compareRuns(inputs, runs[0], runs[1]);
    expect(cmp.differences.slice(0, 3)).toEqual([]);
    // Same seed, same single partition: byte-identical, not merely equal up to renaming.
    expect(runs[0].results).toEqual(runs[1].results);
  });

  it('refuses more than one worker, and fault injection (which needs threads)', async () => {
    expect(() => createCoreEngine(S, { inline: true, workers: 2 })).toThrow(InputError);
    const e = createCoreEngine(S, { inline: true, faults: { throwAtPacket: 1 } });
    try {
      await expect(e.process(mixedTraffic(S, 5, 1))).rejects.toThrow(/fault injection needs worker threads/);
    } finally {
      await e.close();
    }
  });
});

describe("core engine: table layouts ('record' vs 'line')", () => {
  it('give byte-identical results, conntrack tables (timeouts included) and counters, inline and with 2 worker threads', async () => {
    const inputs = mixedTraffic(S, 500, 23);
    for (const opts of [{ inline: true }, { workers: 2 }]) {
      const runs = [];
      for (const layout of ['record', 'line']) {
        const e = createCoreEngine(S, { ...opts, layout, seed: 5, batchSize: 256 });
        try {
          const results = await runAll(e, inputs, 700);
          runs.push({ results, conntrack: await e.conntrack(), counters: await e.natCounters() });
        } finally {
          await e.close();
        }
      }
      expect(runs[1].results).toEqual(runs[0].results);
      expect(runs[1].conntrack).toEqual(runs[0].conntrack);
      expect(runs[1].counters).toEqual(runs[0].counters);
      expect(runs[0].conntrack.length).toBeGreaterThan(50);
    }
  });

  it('refuses an unknown layout with InputError', () => {
    expect(() => createCoreEngine(S, { inline: true, layout: 'wide' })).toThrow(/--layout must be one of record, line/);
  });
});

describe('core engine: timer wheel beyond its horizon (regression: fuzz campaign hang, 27 Nov)', () => {
  it('an ESTABLISHED entry (5-day timeout) survives advances past the ~17 min wheel horizon', async () => {
    // The entry is filed at the wheel's last slot; when the wheel reached that slot it re-filed the
    // entry into the slot being emptied (cur + WHEEL_SLOTS aliases cur) and looped forever.
    // A small table so a new flow takes the table-full path, which drains the wheel exactly.
    const small = { ...S, conntrack: { ...S.conntrack, max: 2 } };
    const e = createCoreEngine(small, { inline: true, seed: 1, capacity: 2 });
    try {
      const t0 = 1_000_000;
      await e.process([
        {
          timeUs: t0,
          ingress: APP,
          frame: buildTcp({ src: APP_IP, dst: HOST, sport: 41000, dport: 443, flags: F_SYN, seq: 1 }),
        },
        {
          timeUs: t0 + 1000,
          ingress: POINT_INTERNET,
          frame: buildTcp({ src: HOST, dst: NAT_EIP, sport: 443, dport: 41000, flags: F_SYN | F_ACK, seq: 9, ack: 2 }),
        },
        {
          timeUs: t0 + 2000,
          ingress: APP,
          frame: buildTcp({ src: APP_IP, dst: HOST, sport: 41000, dport: 443, flags: F_ACK, seq: 2, ack: 10 }),
        },
      ]);
      for (const minutes of [10, 20, 40, 80]) {
        await e.advance(t0 + minutes * 60_000_000);
        const ct = await e.conntrack();
        expect(ct.map((c) => c.state)).toEqual(['ESTABLISHED']);
      }
      const t1 = t0 + 81 * 60_000_000;
      const res = await e.process([
        {
          timeUs: t1,
          ingress: APP,
          frame: buildTcp({ src: APP_IP, dst: HOST, sport: 41000, dport: 443, flags: F_ACK, seq: 2, ack: 10 }),
        },
        { timeUs: t1 + 1000, ingress: APP, frame: buildUdp({ src: APP_IP, dst: HOST, sport: 41001, dport: 53 }) },
        // the table is full now: this one drains the wheel (and early-drops the unreplied UDP entry)
        { timeUs: t1 + 2000, ingress: APP, frame: buildUdp({ src: APP_IP, dst: HOST, sport: 41002, dport: 53 }) },
      ]);
      expect(res.map((r) => r.fate)).toEqual([FATE_DELIVERED, FATE_DELIVERED, FATE_DELIVERED]);
      expect((await e.conntrack()).map((c) => c.orig.sport).sort()).toEqual([41000, 41002]);
    } finally {
      await e.close();
    }
  });
});
