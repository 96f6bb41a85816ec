// A scenario listing hundreds of thousands of internet hosts one per line (a capture's or a log's
// peers): the list is read line by line instead of through the YAML document (memory in
// proportion to the file, not ~1 KB of YAML nodes per host) and kept as ranges. Structure, not
// time: the ranges, the lines errors name, and the same scenario as the YAML path gives.
import { describe, expect, it } from 'vitest';
import { BIG_HOST_LIST, coalesceCidrs, extractHostList, hostsOverlap, parseScenario } from '../../src/scenario/load.ts';
import { formatCidr, formatIpv4, parseIpv4Addr as ip } from '../../src/packet/addr.ts';

const HEAD = `name: big
vpc: { cidr: 10.0.0.0/16 }
routeTables:
  public: [{ dest: 0.0.0.0/0, target: igw }]
subnets:
  public: { cidr: 10.0.0.0/24, routeTable: public }
instances:
  web: { subnet: public, privateIp: 10.0.0.20, elasticIp: 203.0.113.20 }
internet:
  # one peer per line
  hosts:
`;

/** `n` consecutive /32 hosts from 11.0.0.0, then two stray ones; a comment line in the middle. */
function bigScenario(n: number, extra: string[] = []): string {
  const lines: string[] = [];
  const base = ip('11.0.0.0');
  for (let i = 0; i < n; i++) {
    lines.push(`    - ${formatIpv4((base + i) >>> 0)}`);
    if (i === 5) lines.push('    # a comment among the hosts');
  }
  return `${HEAD + lines.join('\n')}\n    - 198.51.100.7\n    - 192.0.2.0/24\n${extra.join('\n')}conntrack: { max: 1000 }\n`;
}

describe('big internet host lists', () => {
  it('coalesceCidrs: the fewest CIDRs covering exactly the same addresses', () => {
    const c = (s: string) => ({ addr: ip(s.split('/')[0]), len: Number(s.split('/')[1] ?? 32) });
    expect(coalesceCidrs([c('10.0.0.1'), c('10.0.0.0'), c('10.0.0.2'), c('10.0.0.3')]).map(formatCidr)).toEqual([
      '10.0.0.0/30',
    ]);
    expect(coalesceCidrs([c('10.0.0.1'), c('10.0.0.2')]).map(formatCidr)).toEqual(['10.0.0.1/32', '10.0.0.2/32']);
    expect(coalesceCidrs([c('10.0.0.0/25'), c('10.0.0.128/25'), c('10.0.1.0/32')]).map(formatCidr)).toEqual([
      '10.0.0.0/24',
      '10.0.1.0/32',
    ]);
    expect(coalesceCidrs([c('255.255.255.254'), c('255.255.255.255')]).map(formatCidr)).toEqual(['255.255.255.254/31']);
  });

  it(`a list of ${BIG_HOST_LIST * 20} hosts is read line by line and kept as ranges`, () => {
    const n = BIG_HOST_LIST * 20; // 200,000 = 0x30d40 consecutive addresses
    const text = bigScenario(n);
    const ex = extractHostList(text)!;
    expect(ex).not.toBeNull();
    expect(ex.hosts.length).toBe(n + 2);
    // line numbers kept: the text handed to YAML has the same number of lines, the list empty
    expect(ex.text.split('\n').length).toBe(text.split('\n').length);
    expect(ex.text).toMatch(/^ {2}hosts: \[\]$/m);
    expect(ex.lines[0]).toBe(HEAD.split('\n').length);
    const s = parseScenario(text, 'big.yaml');
    // 200,000 addresses from 11.0.0.0 = /15 (131072) + /16 (65536) + /21 (2048) + /22 + /24 + /26
    const ranges = s.internetHosts.map(formatCidr);
    expect(ranges).toEqual([
      '11.0.0.0/15',
      '11.2.0.0/16',
      '11.3.0.0/21',
      '11.3.8.0/22',
      '11.3.12.0/24',
      '11.3.13.0/26',
      '192.0.2.0/24',
      '198.51.100.7/32',
    ]);
    const total = s.internetHosts.reduce((a, c) => a + 2 ** (32 - c.len), 0);
    expect(total).toBe(n + 256 + 1);
    expect(s.conntrack.max).toBe(1000); // the rest of the file is read as usual
  });

  it('hostsOverlap: a shared address anywhere in the list, whatever the order', () => {
    const c = (s: string) => ({ addr: ip(s.split('/')[0]), len: Number(s.split('/')[1] ?? 32) });
    expect(hostsOverlap([c('11.0.0.2'), c('11.0.0.1'), c('11.0.0.3')])).toBe(false);
    expect(hostsOverlap([c('11.0.0.2'), c('11.0.0.1'), c('11.0.0.2')])).toBe(true); // duplicate
    expect(hostsOverlap([c('11.0.1.7'), c('11.0.0.0/16')])).toBe(true); // inside a later, wider block
    expect(hostsOverlap([c('11.0.0.0/25'), c('11.0.0.128/25')])).toBe(false); // adjacent
    expect(hostsOverlap([c('255.255.255.255'), c('0.0.0.0/1'), c('128.0.0.0/1')])).toBe(true);
    expect(hostsOverlap([])).toBe(false);
  });

  it('overlapping hosts in a big list are each named with the entry they overlap', () => {
    const text = bigScenario(BIG_HOST_LIST + 10).replace('    - 11.0.1.0\n', '    - 11.0.0.7\n');
    expect(() => parseScenario(text, 'big.yaml')).toThrow(
      /internet\.hosts\[256\]: 11\.0\.0\.7\/32 overlaps internet\.hosts\[7\]/,
    );
  });

  it('errors in the big list name their own line', () => {
    const text = bigScenario(BIG_HOST_LIST + 10)
      .replace('    - 11.0.0.9\n', '    - 11.0.0.999\n')
      .replace('    - 11.0.1.0\n', '    - 10.0.0.5\n');
    const line = (needle: string) => text.split('\n').indexOf(needle) + 1;
    let msg = '';
    try {
      parseScenario(text, 'big.yaml');
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain(
      `big.yaml:${line('    - 11.0.0.999')}: internet.hosts[9]: '11.0.0.999' is not an IPv4 address`,
    );
    expect(msg).toContain(
      `big.yaml:${line('    - 10.0.0.5')}: internet.hosts[256]: 10.0.0.5/32 overlaps the VPC CIDR 10.0.0.0/16`,
    );
  });

  it('a short list, or one that is not plain addresses, goes through YAML unchanged', () => {
    expect(extractHostList(bigScenario(100))).toBeNull();
    const s = parseScenario(bigScenario(100), 'small.yaml');
    expect(s.internetHosts.length).toBe(102); // as written, not merged
    // a non-plain entry early in the list: the line-by-line reader stops there and leaves it all to YAML
    expect(
      extractHostList(bigScenario(BIG_HOST_LIST).replace('    - 11.0.0.3\n', '    - { cidr: 11.0.0.3 }\n')),
    ).toBeNull();
  });
});
