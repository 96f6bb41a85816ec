import { describe, expect, it } from 'vitest';
import { buildIcmpError, buildUdp, parseIpv4Addr as ip, csumReplace32, csumReplace16 } from '../../src/packet/index.ts';
import { DiffSession, uniqueTupleViolations } from '../../src/diff/fuzz/session.ts';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import type { ConntrackEntry, Engine, InputPacket, PacketResult } from '../../src/spec/engine.ts';
import { CT_ESTABLISHED, CT_INVALID, CT_NEW, FATE_DELIVERED, REASON_NONE } from '../../src/spec/reasons.ts';
import { instancePoint, POINT_INTERNET } from '../../src/spec/scenario.ts';

const scenario = loadOpenScenario();
const APP = ip('10.0.1.10');
const EIP = ip('203.0.113.10');
const PEER = ip('198.51.100.7');
const APP_POINT = instancePoint(scenario.instances.findIndex((i) => i.name === 'app'));

/** A NAT written the obvious way for these tests: outbound app→EIP:port, inbound back. */
function snat(
  frame: Uint8Array,
  from: number,
  to: number,
  port: number | null,
  which: 'src' | 'dst',
  udpCsum = true,
): Uint8Array {
  const f = frame.slice();
  const o = which === 'src' ? 12 : 16;
  f.set([to >>> 24, (to >>> 16) & 255, (to >>> 8) & 255, to & 255], o);
  const ipc = csumReplace32((f[10] << 8) | f[11], from, to);
  f[10] = ipc >>> 8;
  f[11] = ipc & 255;
  let c = (f[26] << 8) | f[27];
  if (udpCsum) c = csumReplace32(c, from, to);
  const po = which === 'src' ? 20 : 22;
  if (port !== null) {
    const old = (f[po] << 8) | f[po + 1];
    f[po] = port >>> 8;
    f[po + 1] = port & 255;
    if (udpCsum) c = csumReplace16(c, old, port);
  }
  f[26] = c >>> 8;
  f[27] = c & 255;
  return f;
}

function fakeEngine(
  name: string,
  fn: (p: InputPacket) => PacketResult,
  ct: ConntrackEntry[] = [],
): Engine & { seen: InputPacket[] } {
  const seen: InputPacket[] = [];
  return {
    name,
    seen,
    async process(batch) {
      return batch.map((p) => {
        seen.push(p);
        return fn(p);
      });
    },
    async advance() {},
    async conntrack() {
      return ct;
    },
    async natCounters() {
      return [];
    },
    async close() {},
  };
}

/** NAT that maps app:40000 to EIP:`port` and back. */
function natEngine(name: string, port: number, opts: { leak?: boolean; badCsum?: boolean; wrongDst?: boolean } = {}) {
  return fakeEngine(name, (p) => {
    if (p.ingress !== POINT_INTERNET) {
      const out = opts.leak ? p.frame.slice() : snat(p.frame, APP, EIP, port, 'src', !opts.badCsum);
      return {
        fate: FATE_DELIVERED,
        reason: REASON_NONE,
        detail: 0,
        ct: CT_NEW,
        outputs: [{ egress: POINT_INTERNET, frame: out }],
      };
    }
    const back = snat(p.frame, EIP, opts.wrongDst ? ip('10.0.1.11') : APP, 40000, 'dst');
    return {
      fate: FATE_DELIVERED,
      reason: REASON_NONE,
      detail: 0,
      ct: CT_ESTABLISHED,
      outputs: [{ egress: APP_POINT, frame: back }],
    };
  });
}

const req = buildUdp({ src: APP, dst: PEER, sport: 40000, dport: 53, payload: new Uint8Array([1, 2, 3]) });
const reply = (port: number) =>
  buildUdp({ src: PEER, dst: EIP, sport: 53, dport: port, payload: new Uint8Array([4, 5]) });

describe('DiffSession', () => {
  it("renames replies into each engine's port space and finds no difference between consistent NATs", async () => {
    const a = natEngine('a', 1024);
    const b = natEngine('b', 2048);
    const s = new DiffSession(scenario, [
      { name: 'a', engine: a },
      { name: 'b', engine: b },
    ]);
    await s.send(APP_POINT, req);
    await s.send(POINT_INTERNET, reply(1024), { expect: { egress: APP_POINT, dst: APP, dport: 40000 } });
    await s.finish();
    expect(s.differences).toEqual([]);
    expect(b.seen[1].frame).toEqual(reply(2048));
    expect(a.seen[1].frame).toEqual(reply(1024));
  });

  it('exactPorts: the same two NATs differ — engines sharing one generator must choose the same port', async () => {
    const s = new DiffSession(
      scenario,
      [
        { name: 'a', engine: natEngine('a', 1024) },
        { name: 'b', engine: natEngine('b', 2048) },
      ],
      { exactPorts: true },
    );
    await s.send(APP_POINT, req);
    expect(s.differences.map((d) => d.message).join('\n')).toMatch(
      /port choices differ \(1024 vs 2048\) where both engines draw from the same generator/,
    );
    const same = new DiffSession(
      scenario,
      [
        { name: 'a', engine: natEngine('a', 1024) },
        { name: 'b', engine: natEngine('b', 1024) },
      ],
      { exactPorts: true },
    );
    await same.send(APP_POINT, req);
    await same.send(POINT_INTERNET, reply(1024), { expect: { egress: APP_POINT, dst: APP, dport: 40000 } });
    await same.finish();
    expect(same.differences).toEqual([]);
  });

  it('flags a private source leaving to the internet', async () => {
    const s = new DiffSession(scenario, [{ name: 'leaky', engine: natEngine('leaky', 1024, { leak: true }) }]);
    await s.send(APP_POINT, req);
    expect(s.differences.map((d) => d.kind)).toEqual(['invariant']);
    expect(s.differences[0].message).toMatch(/from 10\.0\.1\.10, which is not an Elastic IP/);
  });

  it('flags a checksum that was valid and is wrong after forwarding', async () => {
    const s = new DiffSession(scenario, [{ name: 'c', engine: natEngine('c', 1024, { badCsum: true }) }]);
    await s.send(APP_POINT, req);
    expect(s.differences[0]?.message).toMatch(/L4 checksum was valid but is wrong/);
  });

  it('flags a wrong checksum that became right (a recomputed instead of an incremental update)', async () => {
    const bad = req.slice();
    bad[27] ^= 0x10;
    // An engine that rebuilds the packet from scratch (correct checksum) instead of patching it.
    const out = buildUdp({ src: EIP, dst: PEER, sport: 40000, dport: 53, payload: new Uint8Array([1, 2, 3]), ttl: 63 });
    const s = new DiffSession(scenario, [
      {
        name: 'c',
        engine: fakeEngine('c', () => ({
          fate: FATE_DELIVERED,
          reason: REASON_NONE,
          detail: 0,
          ct: CT_NEW,
          outputs: [{ egress: POINT_INTERNET, frame: out }],
        })),
      },
    ]);
    await s.send(APP_POINT, bad);
    expect(s.differences[0]?.message).toMatch(/was wrong but is now valid/);
  });

  it('flags a reply delivered to someone other than the sender', async () => {
    const s = new DiffSession(scenario, [{ name: 'w', engine: natEngine('w', 1024, { wrongDst: true }) }]);
    await s.send(APP_POINT, req);
    await s.send(POINT_INTERNET, reply(1024), { expect: { egress: APP_POINT, dst: APP, dport: 40000 } });
    expect(s.differences.map((d) => d.message).join('\n')).toMatch(
      /but the connection's sender is 10\.0\.1\.10:40000 at app/,
    );
  });

  it('a malformed ICMP error forwarded as is (INVALID) is not taken for a generated packet', async () => {
    const err = buildIcmpError({ src: PEER, dst: EIP, type: 3, code: 3, quoted: req, quoteLen: 24 }); // inner too short
    const fwd = fakeEngine('f', (p) => ({
      fate: FATE_DELIVERED,
      reason: REASON_NONE,
      detail: 0,
      ct: CT_INVALID,
      outputs: [{ egress: APP_POINT, frame: p.frame.slice() }],
    }));
    const s = new DiffSession(scenario, [{ name: 'f', engine: fwd }]);
    await s.send(POINT_INTERNET, err);
    expect(s.differences).toEqual([]);
  });

  it('throws DifferenceError in fuzzing mode', async () => {
    const s = new DiffSession(
      scenario,
      [
        { name: 'a', engine: natEngine('a', 1024) },
        { name: 'b', engine: natEngine('b', 1024, { leak: true }) },
      ],
      { throwOnDifference: true },
    );
    await expect(s.send(APP_POINT, req)).rejects.toThrow(/not an Elastic IP/);
  });

  it('does not send a packet whose port is stale in A but live for another session in B', async () => {
    const a = natEngine('a', 1024);
    const b = natEngine('b', 2048);
    const s = new DiffSession(scenario, [
      { name: 'a', engine: a },
      { name: 'b', engine: b },
    ]);
    await s.send(APP_POINT, req);
    // A's 2048 is unbound, but B's 2048 stands for A's 1024: no faithful translation.
    expect(await s.send(POINT_INTERNET, reply(2048))).toBeNull();
    expect(s.skipped).toBe(1);
    expect(a.seen.length).toBe(1);
  });
});

describe('uniqueTupleViolations', () => {
  const e = (sport: number, rport: number): ConntrackEntry => ({
    instance: 0,
    proto: 17,
    state: '',
    timeout: 30,
    assured: false,
    seenReply: false,
    orig: { src: APP, dst: PEER, sport, dport: 53 },
    reply: { src: PEER, dst: ip('10.0.0.10'), sport: 53, dport: rport },
  });
  it('accepts distinct tuples and flags two entries sharing a reply tuple', () => {
    expect(uniqueTupleViolations('x', [e(1, 1024), e(2, 1025)])).toEqual([]);
    const v = uniqueTupleViolations('x', [e(1, 1024), e(2, 1024)]);
    expect(v.length).toBe(1);
    expect(v[0].message).toMatch(/two live conntrack entries share a tuple/);
  });
});
