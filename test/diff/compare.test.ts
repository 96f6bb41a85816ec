import { describe, expect, it } from 'vitest';
import {
  buildIcmpEcho,
  buildIcmpError,
  buildTcp,
  buildUdp,
  parseIpv4Addr as ip,
  PacketView,
  parseIpv4,
  verifyL4Checksum,
  F_SYN,
  F_ACK,
} from '../../src/packet/index.ts';
import {
  compareConntrack,
  compareGatewayConnections,
  compareRuns,
  comparePacket,
  PortRenaming,
  ttlOffsetNormaliser,
  firstDifference,
  type EngineRun,
} from '../../src/diff/compare/compare.ts';
import { loadOpenScenario, parseNatTable } from '../../src/scenario/index.ts';
import type { NatGatewayConnection } from '../../src/spec/nat-gateway.ts';
import type { ConntrackEntry, InputPacket, PacketResult } from '../../src/spec/engine.ts';
import {
  CT_ESTABLISHED,
  CT_NEW,
  DROP_KERNEL_UNSEEN,
  DROP_NAT_CLASH,
  FATE_DELIVERED,
  FATE_DROPPED,
  REASON_NONE,
} from '../../src/spec/reasons.ts';
import { instancePoint, POINT_INTERNET } from '../../src/spec/scenario.ts';

const scenario = loadOpenScenario();
const APP = ip('10.0.1.10');
const NAT = ip('10.0.0.10');
const EIP = ip('203.0.113.10');
const PEER = ip('198.51.100.7');
const APP_POINT = instancePoint(scenario.instances.findIndex((i) => i.name === 'app'));

function delivered(egress: number, frame: Uint8Array, ct = CT_NEW): PacketResult {
  return { fate: FATE_DELIVERED, reason: REASON_NONE, detail: 0, ct, outputs: [{ egress, frame }] };
}
function udpOut(sport: number, ttl = 63) {
  return buildUdp({ src: EIP, dst: PEER, sport, dport: 53, ttl, payload: new Uint8Array([1, 2, 3]) });
}
function input(frame: Uint8Array, ingress = APP_POINT, timeUs = 0): InputPacket {
  return { timeUs, ingress, frame };
}
function ctEntry(port: number, timeout = 30): ConntrackEntry {
  return {
    instance: 0,
    proto: 17,
    state: '',
    timeout,
    assured: false,
    seenReply: false,
    orig: { src: APP, dst: PEER, sport: 40000, dport: 53 },
    reply: { src: PEER, dst: NAT, sport: 53, dport: port },
  };
}
const req = buildUdp({ src: APP, dst: PEER, sport: 40000, dport: 53, payload: new Uint8Array([1, 2, 3]) });

describe('compareRuns', () => {
  it('accepts identical runs', () => {
    const r = [delivered(POINT_INTERNET, udpOut(40000))];
    const res = compareRuns(
      [input(req)],
      { engine: 'model', results: r },
      { engine: 'core', results: r },
      { scenario },
    );
    expect(res.equal).toBe(true);
  });

  it('accepts a consistent renaming of a chosen port and renames conntrack with it', () => {
    const a: EngineRun = {
      engine: 'model',
      results: [delivered(POINT_INTERNET, udpOut(1024))],
      conntrack: [ctEntry(1024)],
    };
    const b: EngineRun = {
      engine: 'core',
      results: [delivered(POINT_INTERNET, udpOut(2048))],
      conntrack: [ctEntry(2048)],
    };
    const res = compareRuns([input(req)], a, b, { scenario });
    expect(res.differences).toEqual([]);
    expect(res.notes.join('\n')).toContain('1024 ↔ 2048');
  });

  it('rejects a renaming that is not stable within a session', () => {
    const inputs = [input(req), input(req, APP_POINT, 1000)];
    const a: EngineRun = {
      engine: 'model',
      results: [delivered(POINT_INTERNET, udpOut(1024)), delivered(POINT_INTERNET, udpOut(1024), CT_ESTABLISHED)],
    };
    const b: EngineRun = {
      engine: 'core',
      results: [delivered(POINT_INTERNET, udpOut(2048)), delivered(POINT_INTERNET, udpOut(2049), CT_ESTABLISHED)],
    };
    const res = compareRuns(inputs, a, b, { scenario });
    expect(res.equal).toBe(false);
    expect(res.differences.map((d) => d.kind)).toContain('renaming');
    expect(res.differences[0].message).toMatch(/packet #1 udp 10\.0\.1\.10:40000 > 198\.51\.100\.7:53/);
  });

  it('binds a chosen port both engines chose alike: a later change of mind is still caught', () => {
    // The first outputs are the same bytes (the identical-output shortcut), but the source was
    // translated (10.0.1.10:40000 -> 203.0.113.10:40000): its port is a choice and is bound.
    const inputs = [input(req), input(req, APP_POINT, 1000)];
    const a: EngineRun = {
      engine: 'model',
      results: [delivered(POINT_INTERNET, udpOut(40000)), delivered(POINT_INTERNET, udpOut(40000), CT_ESTABLISHED)],
    };
    const b: EngineRun = {
      engine: 'core',
      results: [delivered(POINT_INTERNET, udpOut(40000)), delivered(POINT_INTERNET, udpOut(40001), CT_ESTABLISHED)],
    };
    const res = compareRuns(inputs, a, b, { scenario });
    expect(res.equal).toBe(false);
    expect(res.differences.map((d) => d.kind)).toContain('renaming');
    expect(res.differences[0].message).toMatch(/packet #1 /);
  });

  it('rejects a renaming that is not a bijection (two A ports onto one B port)', () => {
    const other = buildUdp({
      src: ip('10.0.1.11'),
      dst: PEER,
      sport: 40001,
      dport: 53,
      payload: new Uint8Array([1, 2, 3]),
    });
    const inputs = [input(req), input(other, APP_POINT, 1000)];
    const a: EngineRun = {
      engine: 'model',
      results: [delivered(POINT_INTERNET, udpOut(1024)), delivered(POINT_INTERNET, udpOut(1025), CT_ESTABLISHED)],
    };
    const b: EngineRun = {
      engine: 'core',
      results: [delivered(POINT_INTERNET, udpOut(2048)), delivered(POINT_INTERNET, udpOut(2048), CT_ESTABLISHED)],
    };
    expect(compareRuns(inputs, a, b, { scenario }).differences.map((d) => d.kind)).toContain('renaming');
  });

  it('rejects a renaming across port ranges', () => {
    const a: EngineRun = { engine: 'model', results: [delivered(POINT_INTERNET, udpOut(1024))] };
    const b: EngineRun = { engine: 'core', results: [delivered(POINT_INTERNET, udpOut(700))] };
    const res = compareRuns([input(req)], a, b, { scenario });
    expect(res.differences[0].kind).toBe('renaming');
    expect(res.differences[0].message).toMatch(/1-511\/600-1023\/1024-65535/);
  });

  it('never renames an untranslated endpoint (the peer port)', () => {
    const outA = buildUdp({ src: EIP, dst: PEER, sport: 40000, dport: 53 });
    const outB = buildUdp({ src: EIP, dst: PEER, sport: 40000, dport: 54 });
    const res = compareRuns(
      [input(req)],
      { engine: 'model', results: [delivered(0, outA)] },
      { engine: 'core', results: [delivered(0, outB)] },
      { scenario },
    );
    expect(res.differences.map((d) => d.kind)).toEqual(['frame']);
    expect(res.differences[0].message).toMatch(/udp destination port\): 53 vs 54/);
  });

  it('a renamed frame must still be byte-identical: a stale checksum is caught', () => {
    const good = udpOut(2048);
    const bad = good.slice();
    bad[26] ^= 0xff; // UDP checksum
    const res = compareRuns(
      [input(req)],
      { engine: 'model', results: [delivered(0, udpOut(1024))] },
      { engine: 'core', results: [delivered(0, bad)] },
      { scenario },
    );
    expect(res.differences.map((d) => d.kind)).toEqual(['frame']);
    expect(res.differences[0].message).toMatch(/udp checksum/);
  });

  it('reports verdict differences as a story', () => {
    const drop: PacketResult = { fate: FATE_DROPPED, reason: DROP_NAT_CLASH, detail: 0, ct: CT_NEW, outputs: [] };
    const res = compareRuns(
      [input(req)],
      { engine: 'model', results: [delivered(0, udpOut(40000))] },
      { engine: 'core', results: [drop] },
      { scenario },
    );
    expect(res.differences[0].kind).toBe('fate');
    expect(res.differences[0].message).toMatch(
      /model delivered to internet as udp 203\.0\.113\.10:40000 > 198\.51\.100\.7:53.*core dropped \(nat-clash\)/,
    );
  });

  it('ignores the IP id of generated ICMP errors but not of forwarded packets', () => {
    const te = (id: number) => buildIcmpError({ src: NAT, dst: APP, type: 11, code: 0, quoted: req, ipId: id });
    const mk = (id: number): PacketResult => ({
      fate: FATE_DROPPED,
      reason: 11,
      detail: 0,
      ct: CT_NEW,
      outputs: [{ egress: APP_POINT, frame: te(id) }],
    });
    expect(
      compareRuns([input(req)], { engine: 'model', results: [mk(0)] }, { engine: 'kernel', results: [mk(4242)] }).equal,
    ).toBe(true);
    const f1 = buildUdp({ src: EIP, dst: PEER, sport: 40000, dport: 53, ipId: 1 });
    const f2 = buildUdp({ src: EIP, dst: PEER, sport: 40000, dport: 53, ipId: 2 });
    expect(
      compareRuns(
        [input(req)],
        { engine: 'model', results: [delivered(0, f1)] },
        { engine: 'core', results: [delivered(0, f2)] },
      ).equal,
    ).toBe(false);
  });

  it('accepts kernel-unseen for any drop reason, visibly, but not for a delivery', () => {
    const drop = (reason: number): PacketResult => ({ fate: FATE_DROPPED, reason, detail: 0, ct: CT_NEW, outputs: [] });
    const res = compareRuns(
      [input(req)],
      { engine: 'model', results: [drop(DROP_NAT_CLASH)] },
      { engine: 'kernel', results: [drop(DROP_KERNEL_UNSEEN)] },
      { scenario },
    );
    expect(res.equal).toBe(true);
    expect(res.notes.join('\n')).toMatch(/kernel-unseen accepted for nat-clash: 1 packet/);
    const res2 = compareRuns(
      [input(req)],
      { engine: 'model', results: [delivered(0, udpOut(40000))] },
      { engine: 'kernel', results: [drop(DROP_KERNEL_UNSEEN)] },
      { scenario },
    );
    expect(res2.differences[0].kind).toBe('fate');
  });

  it('applies a normaliser visibly', () => {
    const n = ttlOffsetNormaliser(1, [POINT_INTERNET], 'kernel: TTL +1 at the internet (extra veth hop)');
    const res = compareRuns(
      [input(req)],
      { engine: 'model', results: [delivered(0, udpOut(40000, 63))] },
      { engine: 'kernel', results: [delivered(0, udpOut(40000, 62))], normaliser: n },
      { scenario },
    );
    expect(res.equal).toBe(true);
    expect(res.notes).toContain('kernel: kernel: TTL +1 at the internet (extra veth hop)');
  });

  it('conntrack: timeouts and missing entries', () => {
    const r = new PortRenaming(scenario);
    expect(compareConntrack([ctEntry(40000, 30)], [ctEntry(40000, 29)], ['model', 'core'], r)[0].message).toMatch(
      /timeout 30 vs 29/,
    );
    const d = compareConntrack([ctEntry(40000)], [], ['model', 'core'], r);
    expect(d[0].message).toMatch(/only model has udp +17 30 src=10\.0\.1\.10/);
  });

  it('conntrack: pairs entries by identity in any order and through the port renaming', () => {
    const r = new PortRenaming(scenario);
    // A chose 40001 where B chose 50001 (seen in a compared frame earlier).
    expect(r.bind(17, NAT, 40001, PEER, 53, 50001, true)).toBeNull();
    const a = [ctEntry(40000), ctEntry(40001), ctEntry(40002, 29), ctEntry(40003)];
    const b = [ctEntry(40002, 30), ctEntry(50001), ctEntry(40000), ctEntry(40004), { ...ctEntry(40000), instance: 1 }];
    const d = compareConntrack(a, b, ['model', 'core'], r).map((x) => x.message);
    expect(d).toEqual([
      expect.stringMatching(/dport=40002 .*: timeout 29 vs 30$/),
      // (40003, which never showed in a frame, pairs with B's unpaired 40004: nothing contradicts it)
      expect.stringMatching(/^conntrack \(instance 1\): only core has .*dport=40000/),
    ]);
    expect(r.lookup(17, NAT, 40003, PEER, 53)).toBe(40004);
  });
});

describe('PortRenaming ranges', () => {
  it("a DNAT target's own source ports may be renamed within their class (a null binding moved them)", () => {
    const s = structuredClone(scenario);
    const nat = s.instances.findIndex((i) => i.nat !== null);
    s.instances[nat].nat = parseNatTable(
      '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n' +
        '-A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 10.0.1.10:80\nCOMMIT\n',
      '<test>',
    );
    const r = new PortRenaming(s);
    const app = ip('10.0.1.10');
    // At the DNAT target: its rule's port, and any other port of the same class.
    expect(r.rangeProblem(6, 80, 80, app)).toBeNull();
    expect(r.rangeProblem(6, 40000, 51234, app)).toBeNull();
    expect(r.rangeProblem(6, 40000, 700, app)).toMatch(/not both inside one range/);
  });
});

describe('PortRenaming.renameFrame', () => {
  it('renames a reply to the chosen port with a correct incremental checksum', () => {
    const r = new PortRenaming(scenario);
    expect(r.bind(17, EIP, 1024, PEER, 53, 2048, true)).toBeNull();
    const reply = buildUdp({ src: PEER, dst: EIP, sport: 53, dport: 1024, payload: new Uint8Array([9, 9]) });
    const renamed = r.renameFrame(reply);
    expect(renamed).toEqual(buildUdp({ src: PEER, dst: EIP, sport: 53, dport: 2048, payload: new Uint8Array([9, 9]) }));
    expect(reply[23]).toBe(0); // original untouched (1024 = 0x0400)
  });

  it('renames TCP, ICMP echo ids and the quoted packet of ICMP errors', () => {
    const r = new PortRenaming(scenario);
    r.bind(6, NAT, 1024, PEER, 443, 3000, true);
    r.bind(1, NAT, 7, PEER, 0, 9, true);
    const syn = buildTcp({ src: PEER, dst: EIP, sport: 443, dport: 1024, flags: F_SYN | F_ACK, seq: 5 });
    expect(r.renameFrame(syn)).toEqual(
      buildTcp({ src: PEER, dst: EIP, sport: 443, dport: 3000, flags: F_SYN | F_ACK, seq: 5 }),
    );
    const echoReply = buildIcmpEcho({ src: PEER, dst: EIP, id: 7, reply: true });
    expect(r.renameFrame(echoReply)).toEqual(buildIcmpEcho({ src: PEER, dst: EIP, id: 9, reply: true }));
    // Far side's port-unreachable quoting our outbound TCP segment (full header quoted).
    const outSeg = buildTcp({ src: EIP, dst: PEER, sport: 1024, dport: 443, flags: F_SYN });
    const outSegB = buildTcp({ src: EIP, dst: PEER, sport: 3000, dport: 443, flags: F_SYN });
    const err = buildIcmpError({ src: PEER, dst: EIP, type: 3, code: 3, quoted: outSeg, quoteLen: 40 });
    const errB = buildIcmpError({ src: PEER, dst: EIP, type: 3, code: 3, quoted: outSegB, quoteLen: 40 });
    const renamed = r.renameFrame(err);
    expect(renamed).toEqual(errB);
    const pv = new PacketView();
    parseIpv4(renamed, 0, renamed.length, pv);
    expect(verifyL4Checksum(renamed, pv)).toBe(true);
  });

  it('streams: comparePacket carries bindings between calls', () => {
    const ctx = { names: ['model', 'core'] as [string, string], renaming: new PortRenaming(scenario), scenario };
    expect(comparePacket(0, input(req), delivered(0, udpOut(1024)), delivered(0, udpOut(2048)), ctx)).toEqual([]);
    expect(ctx.renaming.lookup(17, EIP, 1024, PEER, 53)).toBe(2048);
    expect(ctx.renaming.lookup(17, NAT, 1024, PEER, 53)).toBe(2048); // EIP and private IP share bindings
  });

  it('firstDifference names fields', () => {
    expect(firstDifference(udpOut(1), udpOut(1, 60))).toMatch(/ttl\): 63 vs 60/);
  });
});

describe('compareGatewayConnections', () => {
  const conn = (over: Partial<NatGatewayConnection> = {}): NatGatewayConnection => ({
    natGateway: 0,
    proto: 6,
    src: ip('10.0.1.10'),
    sport: 40000,
    dst: ip('198.51.100.7'),
    dport: 443,
    natIp: ip('10.0.0.50'),
    natPort: 12833,
    timeout: 340,
    replied: true,
    closed: false,
    ...over,
  });
  const names: [string, string] = ['model', 'core'];

  it('finds nothing in equal tables', () => {
    expect(compareGatewayConnections([conn()], [conn()], ['ngw'], names)).toEqual([]);
  });

  it('names a connection only one engine has, and one whose state differs', () => {
    const d = compareGatewayConnections(
      [conn(), conn({ sport: 40001 })],
      [conn({ closed: true }), conn({ proto: 17, sport: 53, dport: 53 })],
      ['ngw'],
      names,
    );
    expect(d.map((x) => x.message)).toEqual([
      'NAT gateway ngw tcp 10.0.1.10:40000 -> 198.51.100.7:443: model as 10.0.0.50:12833, 340 s left, replied vs core as 10.0.0.50:12833, 340 s left, replied, closed',
      'NAT gateway ngw tcp 10.0.1.10:40001 -> 198.51.100.7:443: only in model (as 10.0.0.50:12833, 340 s left, replied)',
      'NAT gateway ngw udp 10.0.1.10:53 -> 198.51.100.7:53: only in core (as 10.0.0.50:12833, 340 s left, replied)',
    ]);
    expect(d.every((x) => x.kind === 'conntrack' && x.index === -1)).toBe(true);
  });

  it('compares the NAT port only with exact ports (engines choosing ports independently may differ)', () => {
    const other = conn({ natPort: 40001 });
    expect(compareGatewayConnections([conn()], [other], ['ngw'], names)).toHaveLength(1);
    expect(compareGatewayConnections([conn()], [other], ['ngw'], names, false)).toEqual([]);
    expect(
      compareGatewayConnections([conn()], [conn({ natPort: 40001, closed: true })], ['ngw'], names, false),
    ).toHaveLength(1);
  });
});
