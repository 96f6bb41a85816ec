// `natGateways:` in scenario files (docs/scenarios.md "NAT gateways"): the bundled scenario loads
// and round-trips through scenarioToYaml; every documented check names the key and the problem.
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadScenario, parseScenario, resolveScenarioPath } from '../../src/scenario/index.ts';
import { scenarioToYaml } from '../../src/scenario/to-yaml.ts';
import { InputError } from '../../src/spec/errors.ts';

const BASE = (gw: string, route = 'nat-gateway:ngw') => `
vpc: { cidr: 10.0.0.0/16 }
routeTables:
  public: [ { dest: 0.0.0.0/0, target: igw } ]
  private: [ { dest: 0.0.0.0/0, target: ${route} } ]
subnets:
  public: { cidr: 10.0.0.0/24, routeTable: public }
  private: { cidr: 10.0.1.0/24, routeTable: private }
instances:
  web: { subnet: public, privateIp: 10.0.0.20, elasticIp: 203.0.113.20 }
  app: { subnet: private, privateIp: 10.0.1.10 }
internet: { hosts: [198.51.100.0/24] }
natGateways:
${gw}
`;

function errorOf(text: string): string {
  try {
    parseScenario(text, 'g.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return (e as Error).message;
  }
  throw new Error('loaded without error');
}

describe('NAT gateways in scenario files', () => {
  it('the bundled scenario loads, with defaults, and round-trips', () => {
    const s = loadScenario(resolveScenarioPath('nat-gateway'));
    expect(s.natGateways).toHaveLength(1);
    const g = s.natGateways![0];
    expect([g.name, g.connectionLimit, g.idleTimeout, g.portSelection]).toEqual(['ngw', 55000, 350, 'random']);
    expect(s.routeTables[1].routes.find((r) => r.target === 'nat-gateway')?.instance).toBe(0);
    expect({ ...parseScenario(scenarioToYaml(s), 'r.yaml'), source: s.source }).toEqual(s);
  });

  it('a scenario without natGateways has no natGateways key (as before)', () => {
    const s = loadScenario(resolveScenarioPath('vpc-nat-instance'));
    expect('natGateways' in s).toBe(false);
  });

  it('eight addresses at most, each in the subnet, not reserved, not taken', () => {
    const nine = Array.from({ length: 9 }, (_, k) => `      - { privateIp: 10.0.0.${50 + k} }`).join('\n');
    expect(errorOf(BASE(`  ngw:\n    subnet: public\n    addresses:\n${nine}`))).toMatch(
      /natGateways\.ngw\.addresses: 9 addresses: a NAT gateway has one primary and at most 7 secondary/,
    );
    expect(errorOf(BASE('  ngw: { subnet: public, addresses: [ { privateIp: 10.0.0.2 } ] }'))).toMatch(
      /addresses\[0\]\.privateIp: 10\.0\.0\.2 is reserved by AWS/,
    );
    expect(errorOf(BASE('  ngw: { subnet: public, addresses: [ { privateIp: 10.0.0.20 } ] }'))).toMatch(
      /10\.0\.0\.20 is already the private IP of instance web/,
    );
    expect(
      errorOf(BASE('  ngw: { subnet: public, addresses: [ { privateIp: 10.0.0.50, elasticIp: 203.0.113.20 } ] }')),
    ).toMatch(/203\.0\.113\.20 is already the Elastic IP of instance web/);
    expect(errorOf(BASE('  ngw: { subnet: public, addresses: [ { privateIp: 10.0.1.50 } ] }'))).toMatch(
      /10\.0\.1\.50 is outside subnet public/,
    );
  });

  it('parameters are checked; route targets name an existing gateway', () => {
    const gw = (extra: string) =>
      BASE(`  ngw: { subnet: public, addresses: [ { privateIp: 10.0.0.50, elasticIp: 203.0.113.50 } ]${extra} }`);
    expect(errorOf(gw(', connectionLimit: 70000'))).toMatch(/connectionLimit: 70000 is out of range 1\.\.64512/);
    expect(errorOf(gw(', idleTimeout: 0'))).toMatch(/idleTimeout: 0 is out of range/);
    expect(errorOf(gw(', portSelection: sequential'))).toMatch(/'sequential' is not one of random, preserve/);
    expect(errorOf(gw(', sg: x'))).toMatch(/unknown key 'sg'/);
    expect(
      errorOf(BASE('  ngw: { subnet: public, addresses: [ { privateIp: 10.0.0.50 } ] }', 'nat-gateway:ngx')),
    ).toMatch(/'nat-gateway:ngx': NAT gateway 'ngx' does not exist \(did you mean 'ngw'\?\); defined: ngw/);
    expect(errorOf(BASE('  ngw: { subnet: nope, addresses: [ { privateIp: 10.0.0.50 } ] }'))).toMatch(
      /natGateways\.ngw\.subnet: subnet 'nope' does not exist/,
    );
  });
});

describe('bundled NAT designs (scenarios/)', () => {
  it('every bundled scenario loads and round-trips; fck-nat masquerades without a source CIDR, alterNAT from the VPC', () => {
    const names = readdirSync('scenarios').filter((f) => f.endsWith('.yaml'));
    expect(names).toEqual(expect.arrayContaining(['nat-gateway.yaml', 'fck-nat.yaml', 'alternat.yaml']));
    for (const f of names) {
      const s = loadScenario(`scenarios/${f}`);
      expect({ ...parseScenario(scenarioToYaml(s), 'r.yaml'), source: s.source }).toEqual(s);
    }
    const fck = loadScenario(resolveScenarioPath('fck-nat')).instances[0].nat!.chains.POSTROUTING;
    expect(fck.map((r) => [r.src, r.target.kind])).toEqual([[null, 'MASQUERADE']]);
    const alt = loadScenario(resolveScenarioPath('alternat')).instances[0].nat!.chains.POSTROUTING;
    expect(alt.map((r) => r.text)).toEqual(['-A POSTROUTING -s 10.0.0.0/16 -o eth0 -j MASQUERADE']);
  });
});
