import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { InputError } from '../../src/spec/errors.ts';
import { cidrContains } from '../../src/packet/addr.ts';
import { buildCaptureScenario } from '../../src/scenario/capture.ts';
import { parseScenario } from '../../src/scenario/load.ts';
import { scenarioToYaml } from '../../src/scenario/to-yaml.ts';
import type { Scenario } from '../../src/spec/scenario.ts';
import { errorOf, ip } from './helpers.ts';

const cidr = (s: string) => {
  const [a, l] = s.split('/');
  return { addr: ip(a), len: Number(l) };
};
const fmt = (c: { addr: number; len: number }) =>
  `${[24, 16, 8, 0].map((b) => (c.addr >>> b) & 255).join('.')}/${c.len}`;

function byName(s: Scenario, name: string) {
  return s.instances.find((i) => i.name === name)!;
}

describe('buildCaptureScenario', () => {
  it('puts the inside hosts behind a configure-pat NAT instance, outside hosts on the internet', () => {
    const s = buildCaptureScenario({
      inside: [cidr('10.0.1.0/24')],
      insideHosts: [ip('10.0.1.10'), ip('10.0.1.20'), ip('10.0.1.10')],
      outsideHosts: [ip('198.51.100.7'), ip('8.8.8.8'), ip('8.8.8.8')],
    });
    expect(s.source).toBe('<capture>');
    expect(fmt(s.vpcCidr)).toBe('10.0.0.0/23');
    const priv = s.subnets.find((x) => x.name === 'private')!;
    const pub = s.subnets.find((x) => x.name === 'public')!;
    expect(fmt(priv.cidr)).toBe('10.0.1.0/24');
    expect(fmt(pub.cidr)).toBe('10.0.0.0/24');
    const nat = byName(s, 'nat');
    expect(nat).toMatchObject({ privateIp: ip('10.0.0.10'), elasticIp: ip('203.0.113.10'), sourceDestCheck: false });
    expect(nat.sysctls.ipForward).toBe(true);
    expect(nat.nat!.chains.POSTROUTING.map((r) => r.text)).toEqual([
      '-A POSTROUTING -s 10.0.0.0/23 -o eth0 -j MASQUERADE',
    ]);
    expect(s.instances.map((i) => i.name)).toEqual(['nat', 'h-10-0-1-10', 'h-10-0-1-20']);
    for (const h of s.instances.slice(1))
      expect(h).toMatchObject({ subnet: s.subnets.indexOf(priv), elasticIp: null, nat: null, sourceDestCheck: true });
    expect(s.internetHosts.map(fmt)).toEqual(['8.8.8.8/32', '198.51.100.7/32']);
    // private route table sends the internet to the NAT instance's ENI, public one to the IGW
    const privRt = s.routeTables[priv.routeTable].routes;
    expect(privRt.find((r) => r.dest.len === 0)).toEqual({ dest: { addr: 0, len: 0 }, target: 'eni', instance: 0 });
    expect(s.routeTables[pub.routeTable].routes.find((r) => r.dest.len === 0)!.target).toBe('igw');
    // and it is a valid scenario file
    expect({ ...parseScenario(scenarioToYaml(s), 'c.yaml'), source: s.source }).toEqual(s);
  });

  it('uses the smallest CIDR around the hosts, not a huge --inside', () => {
    const s = buildCaptureScenario({
      inside: [cidr('10.0.0.0/8')],
      insideHosts: [ip('10.7.3.50'), ip('10.7.3.60')],
      outsideHosts: [ip('1.1.1.1')],
    });
    expect(fmt(s.vpcCidr)).toBe('10.7.2.0/23');
    expect(s.subnets.map((x) => fmt(x.cidr)).sort()).toEqual(['10.7.2.0/24', '10.7.3.0/24']);
  });

  it('widens a private subnet so no host sits on an AWS-reserved address', () => {
    const s = buildCaptureScenario({
      inside: [cidr('192.168.1.0/24')],
      insideHosts: [ip('192.168.1.1'), ip('192.168.1.255')],
      outsideHosts: [],
    });
    const priv = s.subnets.find((x) => x.name === 'private')!;
    expect(fmt(priv.cidr)).toBe('192.168.0.0/22');
    expect(byName(s, 'h-192-168-1-1').privateIp).toBe(ip('192.168.1.1'));
  });

  it('handles several inside networks as several private subnets', () => {
    const s = buildCaptureScenario({
      inside: [cidr('10.0.1.0/24'), cidr('10.0.2.0/24')],
      insideHosts: [ip('10.0.1.10'), ip('10.0.2.10')],
      outsideHosts: [],
    });
    expect(s.subnets.map((x) => x.name)).toEqual(['public', 'private-1', 'private-2']);
    expect(fmt(s.vpcCidr)).toBe('10.0.0.0/22');
  });

  it('picks a free documentation Elastic IP', () => {
    const s = buildCaptureScenario({
      inside: [cidr('10.0.1.0/24')],
      insideHosts: [ip('10.0.1.10')],
      outsideHosts: [ip('203.0.113.10'), ip('203.0.113.1')],
    });
    expect(byName(s, 'nat').elasticIp).toBe(ip('203.0.113.2'));
  });

  it('rejects an outside host inside the chosen VPC CIDR', () => {
    const e = errorOf(() =>
      buildCaptureScenario({
        inside: [cidr('10.0.1.0/24')],
        insideHosts: [ip('10.0.1.10')],
        outsideHosts: [ip('10.0.0.99')],
      }),
    );
    expect(e.message).toContain('outside host 10.0.0.99 falls inside the VPC CIDR 10.0.0.0/23');
  });

  it('rejects impossible inputs clearly', () => {
    expect(errorOf(() => buildCaptureScenario({ inside: [], insideHosts: [], outsideHosts: [] })).message).toContain(
      'no inside CIDR',
    );
    expect(
      errorOf(() =>
        buildCaptureScenario({ inside: [cidr('10.0.1.0/24')], insideHosts: [ip('10.0.2.5')], outsideHosts: [] }),
      ).message,
    ).toContain('inside host 10.0.2.5 is in none of the inside CIDRs');
    expect(
      errorOf(() =>
        buildCaptureScenario({ inside: [cidr('10.0.0.0/24')], insideHosts: [ip('10.0.0.1')], outsideHosts: [] }),
      ).message,
    ).toMatch(/inside host 10\.0\.0\.1 is reserved by AWS .* every smaller subnet/);
    expect(
      errorOf(() =>
        buildCaptureScenario({
          inside: [cidr('10.0.0.0/8'), cidr('172.16.0.0/12')],
          insideHosts: [ip('10.0.0.10'), ip('172.16.0.10')],
          outsideHosts: [],
        }),
      ).message,
    ).toContain('no VPC of /8 or smaller holds them all');
    expect(
      errorOf(() => buildCaptureScenario({ inside: [cidr('10.0.0.0/8')], insideHosts: [], outsideHosts: [] })).message,
    ).toContain('no room for a public subnet');
  });
});

describe('buildCaptureScenario on generated captures', () => {
  it('either builds a valid scenario holding every host, or throws an InputError', () => {
    const arb = fc.record({
      net: fc.integer({ min: 0x0a000000, max: 0x0affffff }),
      len: fc.integer({ min: 16, max: 30 }),
      hostOffsets: fc.uniqueArray(fc.integer({ min: 0, max: 65535 }), { maxLength: 6 }),
      outside: fc.uniqueArray(fc.integer({ min: 0x01000000, max: 0xdfffffff }), { maxLength: 6 }),
    });
    fc.assert(
      fc.property(arb, ({ net, len, hostOffsets, outside }) => {
        const mask = (0xffffffff << (32 - len)) >>> 0;
        const inside = { addr: (net & mask) >>> 0, len };
        const size = 2 ** (32 - len);
        const hosts = hostOffsets.map((o) => (inside.addr + (o % size)) >>> 0);
        let s: Scenario;
        try {
          s = buildCaptureScenario({ inside: [inside], insideHosts: hosts, outsideHosts: outside });
        } catch (e) {
          expect(e).toBeInstanceOf(InputError);
          return;
        }
        for (const h of hosts) expect(s.instances.some((i) => i.privateIp === h && i.nat === null)).toBe(true);
        for (const o of outside) expect(cidrContains(s.vpcCidr, o)).toBe(false);
        expect({ ...parseScenario(scenarioToYaml(s), 'c.yaml'), source: s.source }).toEqual(s);
      }),
      { numRuns: 150 },
    );
  });
});
