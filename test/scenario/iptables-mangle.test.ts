// The mangle table in an instance's iptables text: TCPMSS rules parsed and validated as
// iptables/xt_TCPMSS's checkentry does, canonical text, errors naming the line, and the
// scenario's YAML round trip.
import { describe, expect, it } from 'vitest';
import { parseMangleTable, takeMangleSection } from '../../src/scenario/iptables-mangle.ts';
import { parseScenario } from '../../src/scenario/index.ts';
import { scenarioToYaml } from '../../src/scenario/to-yaml.ts';
import { TCPMSS_CLAMP_PMTU } from '../../src/spec/scenario.ts';

const table = (...rules: string[]): string => ['*mangle', ...rules, 'COMMIT', ''].join('\n');
const errorOf = (text: string): string => {
  try {
    parseMangleTable(text, 'f');
  } catch (e) {
    return (e as Error).message;
  }
  return '';
};

describe('parseMangleTable', () => {
  it('reads the usual clamping rules and prints them as iptables-save does', () => {
    const t = parseMangleTable(
      table(
        ':FORWARD ACCEPT [12:345]',
        '-A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu',
        '-A POSTROUTING -o eth0 -p tcp --syn -j TCPMSS --set-mss 1400',
      ),
      'f',
    );
    expect(t.chains.FORWARD[0]).toMatchObject({ target: 'TCPMSS', mss: TCPMSS_CLAMP_PMTU, l4Match: 'tcp' });
    expect(t.chains.FORWARD[0].text).toBe(
      '-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu',
    );
    expect(t.chains.POSTROUTING[0].text).toBe(
      '-A POSTROUTING -o eth0 -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j TCPMSS --set-mss 1400',
    );
    // Canonical text parses back to the same table.
    expect(parseMangleTable(t.text, 'f').text).toBe(t.text);
  });
  it.each([
    ['-A FORWARD -j TCPMSS --set-mss 1400', /needs '-p tcp'/],
    ['-A FORWARD -p tcp -j TCPMSS --set-mss 1400', /Only works on TCP SYN packets/],
    ['-A FORWARD -p tcp ! --tcp-flags SYN SYN -j TCPMSS --set-mss 1400', /Only works on TCP SYN packets/],
    ['-A FORWARD -p tcp --syn -j TCPMSS', /needs --set-mss N or --clamp-mss-to-pmtu/],
    ['-A FORWARD -p tcp --syn -j TCPMSS --set-mss 1400 --clamp-mss-to-pmtu', /one of --set-mss/],
    ['-A FORWARD -p tcp --syn -j TCPMSS --set-mss 65535', /65535 is the kernel's clamp-to-PMTU marker/],
    ['-A PREROUTING -p tcp --syn -j TCPMSS --set-mss 1400', /not modelled/],
    ['-A FORWARD -p tcp --syn -j MARK --set-mark 1', /not supported in the mangle table/],
    ['-A FORWARD -p udp --tcp-flags SYN SYN -j ACCEPT', /needs '-p tcp'/],
    ['-A FORWARD -p tcp --tcp-flags SYN,BOGUS SYN -j ACCEPT', /unknown TCP flag 'BOGUS'/],
  ])('refuses %s', (rule, re) => {
    expect(errorOf(table(rule))).toMatch(re);
  });
  it('names the line of the instance text', () => {
    expect(errorOf(table(':FORWARD ACCEPT [0:0]', '-A FORWARD -p tcp -j TCPMSS --set-mss 1'))).toMatch(/line 3/);
  });
});

describe('takeMangleSection', () => {
  it('splits the two tables keeping line numbers', () => {
    const text = '*mangle\n-A FORWARD -j ACCEPT\nCOMMIT\n*nat\nCOMMIT\n';
    const { rest, mangle } = takeMangleSection(text);
    expect(rest.split('\n')).toEqual(['', '', '', '*nat', 'COMMIT', '']);
    expect(mangle?.split('\n').slice(0, 3)).toEqual(['*mangle', '-A FORWARD -j ACCEPT', 'COMMIT']);
  });
});

describe('a scenario with a mangle table', () => {
  const yaml = `
vpc: { cidr: 10.0.0.0/16 }
routeTables:
  public: [{ dest: 0.0.0.0/0, target: igw }]
subnets:
  public: { cidr: 10.0.0.0/24, routeTable: public }
instances:
  nat:
    subnet: public
    privateIp: 10.0.0.10
    elasticIp: 203.0.113.10
    sourceDestCheck: false
    sysctls: { net.ipv4.ip_forward: 1 }
    iptables: |
      *mangle
      :FORWARD ACCEPT [0:0]
      -A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1460
      COMMIT
      *nat
      :POSTROUTING ACCEPT [0:0]
      -A POSTROUTING -o eth0 -j MASQUERADE
      COMMIT
`;
  it('loads both tables and writes them back', () => {
    const s = parseScenario(yaml, 'x.yaml');
    const nat = s.instances[0];
    expect(nat.mangle?.chains.FORWARD[0].mss).toBe(1460);
    expect(nat.nat?.chains.POSTROUTING).toHaveLength(1);
    const again = parseScenario(scenarioToYaml(s), 'y.yaml');
    expect(again.instances[0].mangle?.text).toBe(nat.mangle?.text);
    expect(again.instances[0].nat?.text).toBe(nat.nat?.text);
  });
  it('reports a bad mangle rule at its line in the file', () => {
    expect(() => parseScenario(yaml.replace('--set-mss 1460', '--set-mss x'), 'x.yaml')).toThrow(
      /x\.yaml:17.*--set-mss: 'x'/s,
    );
  });
});
