// The built-in scenario's NAT instance carries AWS's recommended NAT instance security group
// (Amazon VPC User Guide, "NAT instances": NATSG — inbound HTTP/HTTPS from the private subnet's
// CIDR, SSH from your network; outbound HTTP/HTTPS anywhere). docs/semantics.md §11.
// The group's rules as compiled; HTTPS passes and a DNS query to an internet resolver is dropped
// sg-deny, with trace hops naming the rule; the model and the core (inline and on a worker) give
// the same fates, reasons and output frames. vpc-nat-instance-open is the same VPC unfiltered.
import { afterEach, describe, expect, it } from 'vitest';
import { makeEngine, type EngineName } from '../../src/diff/engines.ts';
import {
  BUILTIN_SCENARIO_PATH,
  OPEN_SCENARIO_PATH,
  loadBuiltinScenario,
  loadOpenScenario,
  resolveScenarioPath,
} from '../../src/scenario/index.ts';
import { createModelEngine, tracePacket } from '../../src/model/index.ts';
import { describeScenario } from '../../src/scenario/describe.ts';
import { buildTcp, buildUdp, F_ACK, F_SYN, parseIpv4Addr as ip, PROTO_TCP } from '../../src/packet/index.ts';
import { DROP_SG_DENY, FATE_DELIVERED, FATE_DROPPED, reasonName } from '../../src/spec/reasons.ts';
import type { Engine, InputPacket, PacketResult } from '../../src/spec/engine.ts';
import { POINT_INTERNET, instancePoint } from '../../src/spec/scenario.ts';

const s = loadBuiltinScenario();
const idx = (n: string) => s.instances.findIndex((i) => i.name === n);
const APP = instancePoint(idx('app'));

const httpsSyn = () =>
  buildTcp({ src: ip('10.0.1.10'), sport: 40000, dst: ip('198.51.100.7'), dport: 443, flags: F_SYN, seq: 1, ack: 0 });
const httpsSynAck = () =>
  buildTcp({
    src: ip('198.51.100.7'),
    sport: 443,
    dst: ip('203.0.113.10'),
    dport: 40000,
    flags: F_SYN | F_ACK,
    seq: 500,
    ack: 2,
  });
const dnsQuery = () =>
  buildUdp({ src: ip('10.0.1.10'), sport: 40001, dst: ip('198.51.100.53'), dport: 53, payload: new Uint8Array(20) });
const sshToNat = (src: string) =>
  buildTcp({ src: ip(src), sport: 50000, dst: ip('203.0.113.10'), dport: 22, flags: F_SYN, seq: 7, ack: 0 });

/** HTTPS out and its SYN/ACK back, DNS out, SSH to the NAT from "your network" and from elsewhere. */
function inputs(): InputPacket[] {
  return [
    { timeUs: 1000, ingress: APP, frame: httpsSyn() },
    { timeUs: 2000, ingress: POINT_INTERNET, frame: httpsSynAck() },
    { timeUs: 3000, ingress: APP, frame: dnsQuery() },
    { timeUs: 4000, ingress: POINT_INTERNET, frame: sshToNat('198.51.100.9') },
    { timeUs: 5000, ingress: POINT_INTERNET, frame: sshToNat('192.0.2.9') },
  ];
}
const EXPECTED = ['delivered', 'delivered', 'sg-deny', 'delivered', 'sg-deny'];

function outcome(r: PacketResult): string {
  return r.fate === FATE_DELIVERED ? 'delivered' : reasonName(r.reason);
}

describe("the built-in scenario's NAT security group (AWS's NATSG)", () => {
  it('the NAT instance has exactly the NATSG rules: TCP 80/443 in from the private subnet, SSH from your network, TCP 80/443 out to anywhere', () => {
    const nat = s.instances[idx('nat')];
    expect(nat.security).toBeDefined();
    const groups = nat.security!.groups.map((g) => s.securityGroups![g]);
    expect(groups.map((g) => g.name)).toEqual(['natsg']);
    const rule = (r: { proto: number; portLo: number; portHi: number; cidr: { addr: number; len: number } | null }) =>
      `${r.proto === PROTO_TCP ? 'tcp' : r.proto} ${r.portLo}-${r.portHi} ${r.cidr ? `${r.cidr.addr >>> 0}/${r.cidr.len}` : 'group'}`;
    const cidr = (t: string) => `${ip(t.split('/')[0]) >>> 0}/${t.split('/')[1]}`;
    expect(groups[0].inbound.map(rule)).toEqual([
      `tcp 80-80 ${cidr('10.0.1.0/24')}`,
      `tcp 443-443 ${cidr('10.0.1.0/24')}`,
      `tcp 22-22 ${cidr('198.51.100.0/24')}`,
    ]);
    expect(groups[0].outbound.map(rule)).toEqual([
      `tcp 80-80 ${cidr('0.0.0.0/0')}`,
      `tcp 443-443 ${cidr('0.0.0.0/0')}`,
    ]);
    // AWS's default tracking on the ENI; only the NAT instance is filtered, no network ACLs.
    expect(nat.security!.tracking).toEqual({ tcpEstablished: 432000, udp: 30, udpStream: 180, allowance: 262144 });
    expect(s.instances.filter((i) => i.security !== undefined).map((i) => i.name)).toEqual(['nat']);
    expect(s.networkAcls ?? []).toEqual([]);
  });

  it('natlab scenario check lists the group, its ENI and its rules; the open twin lists none', () => {
    expect(describeScenario(s)).toContain(
      '  security groups (1):\n    natsg (on nat): in tcp 80 10.0.1.0/24, tcp 443 10.0.1.0/24, tcp 22 198.51.100.0/24; out tcp 80 0.0.0.0/0, tcp 443 0.0.0.0/0\n',
    );
    expect(describeScenario(s)).not.toContain('network ACLs');
    expect(describeScenario(loadOpenScenario())).not.toContain('security groups');
  });

  it('vpc-nat-instance-open is the same VPC without any security group', () => {
    const o = loadOpenScenario();
    expect(resolveScenarioPath('vpc-nat-instance-open')).toBe(OPEN_SCENARIO_PATH);
    expect(resolveScenarioPath()).toBe(BUILTIN_SCENARIO_PATH);
    expect(o.name).toBe('vpc-nat-instance-open');
    expect(o.securityGroups ?? []).toEqual([]);
    expect(o.networkAcls ?? []).toEqual([]);
    const strip = (x: typeof s) => x.instances.map(({ security: _s, ...rest }) => rest as Record<string, unknown>);
    expect(strip(o)).toEqual(strip(s));
    expect(o.routeTables).toEqual(s.routeTables);
    expect(o.subnets).toEqual(s.subnets);
    expect(o.internetHosts).toEqual(s.internetHosts);
    expect(o.conntrack).toEqual(s.conntrack);
  });

  it('trace: HTTPS passes, each security-group hop naming the rule; its reply passes as a tracked response', () => {
    const e = createModelEngine(s, { seed: 1 });
    const t = tracePacket(e, 'https', httpsSyn(), APP, 0, true);
    expect(t.fate).toBe('delivered');
    const sgIn = t.hops.find((h) => h.name === 'security groups nat (inbound)');
    const sgOut = t.hops.find((h) => h.name === 'security groups nat (outbound)');
    expect(sgIn?.note).toMatch(/^rule natsg inbound\[1\] tcp 443 10\.0\.1\.0\/24; tracked \(new flow/);
    expect(sgOut?.note).toMatch(/^rule natsg outbound\[1\] tcp 443 0\.0\.0\.0\/0; tracked \(new flow/);
    expect(t.reply?.fate).toBe('delivered');
    const back = t.reply!.hops.filter((h) => h.name.startsWith('security groups nat'));
    expect(back.map((h) => h.note)).toEqual([
      expect.stringMatching(/^tracked flow \(response\): allowed whatever the rules say/),
      expect.stringMatching(/^tracked flow \(response\): allowed whatever the rules say/),
    ]);
  });

  it('trace: a DNS query to an internet resolver is dropped sg-deny at the NAT instance ENI, before conntrack', () => {
    const e = createModelEngine(s, { seed: 1 });
    const t = tracePacket(e, 'dns', dnsQuery(), APP, 0, true);
    expect(t.fate).not.toBe('delivered');
    expect(t.result.fate).toBe(FATE_DROPPED);
    expect(t.result.reason).toBe(DROP_SG_DENY);
    const last = t.hops[t.hops.length - 1];
    expect(last.name).toBe('security groups nat (inbound)');
    expect(last.drop).toBe('sg-deny');
    expect(last.note).toMatch(/no inbound rule of natsg allows it/);
    expect(t.hops.some((h) => h.name.startsWith('NAT instance nat'))).toBe(false);
    expect(e.conntrackSync()).toEqual([]);
  });

  describe('model and core agree', () => {
    let open: Engine | null = null;
    afterEach(async () => {
      await open?.close();
      open = null;
    });
    const engines: Array<[string, EngineName, Record<string, unknown>]> = [
      ['model', 'model', {}],
      ['core inline', 'core', { inline: true }],
      ['core on a worker thread', 'core', {}],
    ];
    let modelFrames: string[] | null = null;
    for (const [label, name, extra] of engines)
      it(`${label}: HTTPS and its reply pass, DNS is sg-deny, SSH only from your network`, async () => {
        const e = await makeEngine(name, loadBuiltinScenario(), {
          seed: 1,
          workers: name === 'core' ? 1 : undefined,
          extra,
        });
        open = e;
        const r = await e.process(inputs());
        expect(r.map(outcome)).toEqual(EXPECTED);
        const frames = r.map((x) =>
          x.outputs.map((o) => `${o.egress}:${Buffer.from(o.frame).toString('hex')}`).join(','),
        );
        if (name === 'model') modelFrames = frames;
        else expect(frames).toEqual(modelFrames);
        // The unfiltered twin lets the DNS query through and drops nothing.
        const u = await makeEngine(name, loadOpenScenario(), {
          seed: 1,
          workers: name === 'core' ? 1 : undefined,
          extra,
        });
        try {
          expect((await u.process(inputs())).map(outcome).slice(0, 4)).toEqual([
            'delivered',
            'delivered',
            'delivered',
            'delivered',
          ]);
        } finally {
          await u.close();
        }
      }, 30_000);
  });
});
