// NAT gateways (docs/semantics.md "NAT gateway") in both engines: the same packets through the
// model and the core (inline) must give the same results, outputs and CloudWatch-named counters,
// and those must be what AWS documents: translation to the NAT address, the per-destination
// connection limit (ErrorPortAllocation), the idle timeout with an RST for a later packet from
// inside (IdleTimeoutCount), TCP/ICMP fragments dropped, other protocols dropped.
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/scenario/index.ts';
import { createModelEngine } from '../../src/model/index.ts';
import { createCoreEngine } from '../../src/core/engine.ts';
import {
  buildIcmpEcho,
  buildIpv4,
  buildTcp,
  buildUdp,
  F_ACK,
  F_RST,
  F_SYN,
  PacketView,
  parseIpv4,
  parseIpv4Addr as A,
  verifyL4Checksum,
} from '../../src/packet/index.ts';
import { POINT_INTERNET, instancePoint, type Scenario } from '../../src/spec/scenario.ts';
import type { Engine, InputPacket, PacketResult } from '../../src/spec/engine.ts';
import { reasonName } from '../../src/spec/reasons.ts';
import type { NatGatewayConnection } from '../../src/spec/nat-gateway.ts';

function gwScenario(extra = ''): Scenario {
  return parseScenario(
    `
vpc: { cidr: 10.0.0.0/16 }
routeTables:
  public: [ { dest: 0.0.0.0/0, target: igw } ]
  private: [ { dest: 0.0.0.0/0, target: nat-gateway:ngw } ]
subnets:
  public: { cidr: 10.0.0.0/24, routeTable: public }
  private: { cidr: 10.0.1.0/24, routeTable: private }
natGateways:
  ngw:
    subnet: public
    addresses:
      - { privateIp: 10.0.0.50, elasticIp: 203.0.113.50 }
      - { privateIp: 10.0.0.51, elasticIp: 203.0.113.51 }
    connectionLimit: 2
    idleTimeout: 10
${extra}
instances:
  app: { subnet: private, privateIp: 10.0.1.10 }
internet: { hosts: [198.51.100.0/24] }
`,
    'ngw.yaml',
  );
}

const APP = instancePoint(0);
const PEER = A('198.51.100.7');

function tcp(sport: number, flags: number, timeUs = 0, extra: { seq?: number; ack?: number } = {}): InputPacket {
  return {
    timeUs,
    ingress: APP,
    frame: buildTcp({ src: A('10.0.1.10'), dst: PEER, sport, dport: 443, flags, ...extra }),
  };
}

function parsed(f: Uint8Array): PacketView {
  const pv = new PacketView();
  parseIpv4(f, 0, f.length, pv);
  return pv;
}

/** Runs `packets` one by one through model and core; asserts they agree; returns the model's results. */
async function both(
  s: Scenario,
  packets: InputPacket[],
  endUs?: number,
): Promise<{ res: PacketResult[]; counters: Record<string, number>; conns: NatGatewayConnection[] }> {
  const engines: Engine[] = [createModelEngine(s, { seed: 7 }), createCoreEngine(s, { seed: 7, inline: true })];
  const all: PacketResult[][] = [[], []];
  try {
    for (const p of packets)
      for (let k = 0; k < 2; k++) {
        const [r] = await engines[k].process([p]);
        all[k].push(r);
      }
    if (endUs !== undefined) for (const e of engines) await e.advance(endUs);
    const norm = (r: PacketResult) => ({
      fate: r.fate,
      reason: reasonName(r.reason),
      ct: r.ct,
      outputs: r.outputs.map((o) => ({ egress: o.egress, frame: Buffer.from(o.frame).toString('hex') })),
    });
    expect(all[1].map(norm)).toEqual(all[0].map(norm));
    const [ca, cb] = await Promise.all(engines.map((e) => e.natGatewayCounters!()));
    expect(cb).toEqual(ca);
    const [ka, kb] = await Promise.all(engines.map((e) => e.natGatewayConnections!()));
    expect(kb).toEqual(ka);
    return { res: all[0], counters: ca[0].metrics, conns: ka };
  } finally {
    for (const e of engines) await e.close();
  }
}

describe('NAT gateway: model and core', () => {
  it('translates to a NAT address and back, with valid checksums', async () => {
    const s = gwScenario();
    const { res } = await both(s, [tcp(40000, F_SYN)]);
    expect(res[0].outputs).toHaveLength(1);
    const out = res[0].outputs[0];
    expect(out.egress).toBe(POINT_INTERNET);
    const pv = parsed(out.frame);
    expect(pv.src).toBe(A('203.0.113.50'));
    expect(pv.sport).toBeGreaterThanOrEqual(1024);
    expect(verifyL4Checksum(out.frame, pv)).toBe(true);
    const reply: InputPacket = {
      timeUs: 1000,
      ingress: POINT_INTERNET,
      frame: buildTcp({ src: PEER, dst: pv.src, sport: 443, dport: pv.sport, flags: F_SYN | F_ACK, ack: 1 }),
    };
    const r2 = await both(s, [tcp(40000, F_SYN), reply]);
    const back = r2.res[1].outputs[0];
    expect(back.egress).toBe(APP);
    const bv = parsed(back.frame);
    expect([bv.dst, bv.dport]).toEqual([A('10.0.1.10'), 40000]);
    expect(verifyL4Checksum(back.frame, bv)).toBe(true);
    expect(r2.counters.ConnectionAttemptCount).toBe(1);
    expect(r2.counters.ConnectionEstablishedCount).toBe(1);
    expect(r2.counters.ActiveConnectionCount).toBe(1);
  });

  it('lists its connections the same way in both engines: seconds left, replied, closed', async () => {
    const s = gwScenario();
    const first = await both(s, [tcp(40000, F_SYN, 0)]);
    const pv = parsed(first.res[0].outputs[0].frame);
    const reply: InputPacket = {
      timeUs: 2_500_000,
      ingress: POINT_INTERNET,
      frame: buildTcp({ src: PEER, dst: pv.src, sport: 443, dport: pv.sport, flags: F_SYN | F_ACK, ack: 1 }),
    };
    const udp: InputPacket = {
      timeUs: 3_000_000,
      ingress: APP,
      frame: buildUdp({ src: A('10.0.1.10'), dst: PEER, sport: 5353, dport: 53, payload: new Uint8Array(8) }),
    };
    // At 4.2 s: the TCP connection was last active at 2.5 s (10 s idle timeout: 8 s left), the UDP one at 3 s.
    const { conns } = await both(s, [tcp(40000, F_SYN, 0), reply, udp], 4_200_000);
    expect(conns.map((c) => [c.proto, c.sport, c.dport, c.timeout, c.replied, c.closed])).toEqual([
      [6, 40000, 443, 8, true, false],
      [17, 5353, 53, 8, false, false],
    ]);
    expect(conns[0].natIp).toBe(A('10.0.0.50'));
    expect(conns[0].natPort).toBe(pv.sport);
    // An RST closes it (kept until idle); after the idle timeout the table is empty.
    const rst = tcp(40000, F_RST | F_ACK, 5_000_000, { seq: 1, ack: 1 });
    const closed = await both(s, [tcp(40000, F_SYN, 0), reply, rst], 5_000_000);
    expect(closed.conns.map((c) => [c.timeout, c.closed])).toEqual([[10, true]]);
    const gone = await both(s, [tcp(40000, F_SYN, 0), reply, rst], 15_000_000);
    expect(gone.conns).toEqual([]);
  });

  it('connection limit per destination and address: the second address, then ErrorPortAllocation', async () => {
    const s = gwScenario();
    const { res, counters } = await both(
      s,
      [1, 2, 3, 4, 5].map((k) => tcp(40000 + k, F_SYN)),
    );
    const srcs = res.slice(0, 4).map((r) => parsed(r.outputs[0].frame).src);
    expect(srcs).toEqual([A('203.0.113.50'), A('203.0.113.50'), A('203.0.113.51'), A('203.0.113.51')]);
    expect(reasonName(res[4].reason)).toBe('natgw-port-allocation');
    expect(counters.ErrorPortAllocation).toBe(1);
    expect(counters.PacketsDropCount).toBe(1);
  });

  it('idle timeout: gone after idleTimeout s, the next packet from inside gets an RST', async () => {
    const s = gwScenario();
    const { res, counters } = await both(
      s,
      [tcp(40000, F_SYN), tcp(40000, F_ACK, 10_000_000, { seq: 1, ack: 77 })],
      20_000_000,
    );
    expect(reasonName(res[1].reason)).toBe('natgw-idle-timeout');
    expect(res[1].outputs).toHaveLength(1);
    const rst = res[1].outputs[0];
    expect(rst.egress).toBe(APP);
    const pv = parsed(rst.frame);
    expect([pv.src, pv.sport, pv.dst, pv.dport]).toEqual([PEER, 443, A('10.0.1.10'), 40000]);
    expect(pv.tcpFlags).toBe(F_RST);
    expect(pv.tcpSeq).toBe(77);
    expect(verifyL4Checksum(rst.frame, pv)).toBe(true);
    expect(counters.IdleTimeoutCount).toBe(1);
    expect(counters.ActiveConnectionCount).toBe(0);
  });

  it('a connection in use does not time out; an RST ends it without an idle timeout', async () => {
    const s = gwScenario();
    const { res, counters } = await both(
      s,
      [
        tcp(40000, F_SYN),
        tcp(40000, F_ACK, 9_000_000),
        tcp(40000, F_ACK, 18_000_000),
        tcp(40000, F_RST | F_ACK, 19_000_000),
      ],
      60_000_000,
    );
    expect(res.map((r) => reasonName(r.reason))).toEqual(['none', 'none', 'none', 'none']);
    expect(counters.IdleTimeoutCount).toBe(0);
    expect(counters.ActiveConnectionCount).toBe(0);
  });

  it('fragments: TCP and ICMP dropped, a first UDP fragment translated; other protocols dropped', async () => {
    const s = gwScenario();
    const frag = (proto: 'tcp' | 'udp' | 'icmp'): InputPacket => {
      const f =
        proto === 'tcp'
          ? buildTcp({ src: A('10.0.1.10'), dst: PEER, sport: 1, dport: 2, flags: F_SYN })
          : proto === 'udp'
            ? buildUdp({ src: A('10.0.1.10'), dst: PEER, sport: 5000, dport: 53, payload: new Uint8Array(16) })
            : buildIcmpEcho({ src: A('10.0.1.10'), dst: PEER, id: 9, seq: 1 });
      f[6] |= 0x20; // MF
      f[6] &= ~0x40; // DF off
      f[10] = 0;
      f[11] = 0;
      let sum = 0;
      for (let i = 0; i < 20; i += 2) sum += (f[i] << 8) | f[i + 1];
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
      f[10] = (~sum >>> 8) & 0xff;
      f[11] = ~sum & 0xff;
      return { timeUs: 0, ingress: APP, frame: f };
    };
    const gre: InputPacket = {
      timeUs: 0,
      ingress: APP,
      frame: buildIpv4({ src: A('10.0.1.10'), dst: PEER, proto: 47, payload: new Uint8Array(8) }),
    };
    const { res } = await both(s, [frag('tcp'), frag('icmp'), frag('udp'), gre]);
    expect(res.map((r) => reasonName(r.reason))).toEqual([
      'natgw-fragment',
      'natgw-fragment',
      'none',
      'natgw-protocol',
    ]);
  });

  it('unsolicited inbound packets are dropped (natgw-no-connection)', async () => {
    const s = gwScenario();
    const { res, counters } = await both(s, [
      {
        timeUs: 0,
        ingress: POINT_INTERNET,
        frame: buildUdp({ src: PEER, dst: A('203.0.113.51'), sport: 53, dport: 40000, payload: new Uint8Array(4) }),
      },
    ]);
    expect(reasonName(res[0].reason)).toBe('natgw-no-connection');
    expect(counters.PacketsDropCount).toBe(1);
    expect(counters.PacketsInFromDestination).toBe(1);
  });

  it("portSelection 'preserve' keeps the client's port when free", async () => {
    const s = gwScenario('    portSelection: preserve');
    const { res } = await both(s, [tcp(40000, F_SYN)]);
    expect(parsed(res[0].outputs[0].frame).sport).toBe(40000);
  });
});

describe('NAT gateway: the kernel engine refuses it', () => {
  it('says why (InputError: exit 2), and engineUnsupported tells commands to skip it', async () => {
    const { createKernelEngine } = await import('../../src/oracle/engine.ts');
    const { engineUnsupported } = await import('../../src/diff/engines.ts');
    const s = gwScenario();
    await expect(createKernelEngine(s)).rejects.toThrow(/kernel engine cannot judge a NAT gateway/);
    expect(engineUnsupported('kernel', s)).toMatch(/NAT gateway \(ngw\)/);
    expect(engineUnsupported('core', s)).toBeNull();
  });
});
