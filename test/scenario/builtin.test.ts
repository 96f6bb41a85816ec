import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { BUILTIN_SCENARIO_PATH, loadBuiltinScenario, resolveScenarioPath } from '../../src/scenario/builtin.ts';
import { configurePatTable } from '../../src/scenario/iptables.ts';
import { DEFAULT_CONNTRACK_MAX, DEFAULT_TIMEOUTS } from '../../src/spec/timeouts.ts';
import { ip } from './helpers.ts';

/** Linux's ICMP rate-limit sysctls (6.18): icmp_ratelimit 1000 ms, icmp_ratemask 0x1818, 1000 messages/s, burst 50. */
const ICMP_DEFAULTS = { icmpRatelimit: 1000, icmpRatemask: 0x1818, icmpMsgsPerSec: 1000, icmpMsgsBurst: 50 };

describe('built-in scenario (scenarios/vpc-nat-instance.yaml)', () => {
  const s = loadBuiltinScenario();

  it('is the file every command defaults to', () => {
    expect(existsSync(BUILTIN_SCENARIO_PATH)).toBe(true);
    expect(resolveScenarioPath()).toBe(BUILTIN_SCENARIO_PATH);
    expect(resolveScenarioPath('')).toBe(BUILTIN_SCENARIO_PATH);
    expect(resolveScenarioPath('vpc-nat-instance')).toBe(BUILTIN_SCENARIO_PATH);
    expect(resolveScenarioPath('some/other.yaml')).toBe('some/other.yaml');
    expect(s.source).toBe(BUILTIN_SCENARIO_PATH);
    expect(s.name).toBe('vpc-nat-instance');
  });

  it('has the VPC, subnets and route tables of the article', () => {
    expect(s.vpcCidr).toEqual({ addr: ip('10.0.0.0'), len: 16 });
    expect(s.subnets).toEqual([
      { name: 'public', cidr: { addr: ip('10.0.0.0'), len: 24 }, routeTable: 0 },
      { name: 'private', cidr: { addr: ip('10.0.1.0'), len: 24 }, routeTable: 1 },
    ]);
    const nat = s.instances.findIndex((i) => i.name === 'nat');
    expect(s.routeTables).toEqual([
      {
        name: 'public',
        routes: [
          { dest: { addr: ip('10.0.0.0'), len: 16 }, target: 'local', instance: -1 },
          { dest: { addr: 0, len: 0 }, target: 'igw', instance: -1 },
        ],
      },
      {
        name: 'private',
        routes: [
          { dest: { addr: ip('10.0.0.0'), len: 16 }, target: 'local', instance: -1 },
          { dest: { addr: 0, len: 0 }, target: 'eni', instance: nat },
        ],
      },
    ]);
  });

  it('has the NAT instance as configure-pat.sh leaves it', () => {
    const nat = s.instances.find((i) => i.name === 'nat')!;
    expect(nat.subnet).toBe(0);
    expect(nat.privateIp).toBe(ip('10.0.0.10'));
    expect(nat.elasticIp).toBe(ip('203.0.113.10'));
    expect(nat.sourceDestCheck).toBe(false);
    expect(nat.sysctls).toEqual({
      ipForward: true,
      sendRedirectsAll: true,
      sendRedirectsEth0: false,
      ...ICMP_DEFAULTS,
    });
    expect(nat.nat).toEqual(configurePatTable({ addr: ip('10.0.0.0'), len: 16 }));
    expect(nat.nat!.chains.POSTROUTING).toHaveLength(1);
    const r = nat.nat!.chains.POSTROUTING[0];
    expect(r.text).toBe('-A POSTROUTING -s 10.0.0.0/16 -o eth0 -j MASQUERADE');
    expect(r.src).toEqual({ cidr: { addr: ip('10.0.0.0'), len: 16 }, neg: false });
    expect(r.outIface).toEqual({ name: 'eth0', neg: false });
    expect(r.target.kind).toBe('MASQUERADE');
    expect(r.target.flags).toBe(0);
    expect(nat.nat!.chains.PREROUTING).toEqual([]);
    expect(nat.nat!.text).toBe(
      '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n' +
        '-A POSTROUTING -s 10.0.0.0/16 -o eth0 -j MASQUERADE\nCOMMIT\n',
    );
  });

  it('has the web and app servers as plain instances', () => {
    const web = s.instances.find((i) => i.name === 'web')!;
    const app = s.instances.find((i) => i.name === 'app')!;
    expect(web).toMatchObject({
      subnet: 0,
      privateIp: ip('10.0.0.20'),
      elasticIp: ip('203.0.113.20'),
      sourceDestCheck: true,
      nat: null,
    });
    expect(app).toMatchObject({
      subnet: 1,
      privateIp: ip('10.0.1.10'),
      elasticIp: null,
      sourceDestCheck: true,
      nat: null,
    });
    for (const i of [web, app])
      expect(i.sysctls).toEqual({
        ipForward: false,
        sendRedirectsAll: true,
        sendRedirectsEth0: true,
        ...ICMP_DEFAULTS,
      });
  });

  it('has the internet hosts and Linux conntrack defaults', () => {
    expect(s.internetHosts).toEqual([
      { addr: ip('198.51.100.0'), len: 24 },
      { addr: ip('192.0.2.0'), len: 24 },
    ]);
    expect(s.conntrack).toEqual({
      max: DEFAULT_CONNTRACK_MAX,
      timeouts: { ...DEFAULT_TIMEOUTS },
      tcpLoose: true,
      checksum: true,
    });
  });

  it('hands out independent copies', () => {
    const a = loadBuiltinScenario();
    a.instances[0].name = 'changed';
    expect(loadBuiltinScenario().instances[0].name).not.toBe('changed');
  });
});
