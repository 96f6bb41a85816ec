// The filter table parser (src/scenario/iptables-filter.ts): canonical text that parses back to
// itself, every option it takes, and one clear error per bad rule naming the line and the option.
import { describe, expect, it } from 'vitest';
import { parseFilterTable } from '../../src/scenario/iptables-filter.ts';
import { InputError } from '../../src/spec/errors.ts';
import { CTSTATE_ESTABLISHED, CTSTATE_RELATED } from '../../src/spec/scenario.ts';
import { parseObject } from './helpers.ts';

const table = (...lines: string[]): string => ['*filter', ...lines, 'COMMIT', ''].join('\n');

describe('filter table parser', () => {
  it('parses policies, user chains, matches and targets; the canonical text parses back to itself', () => {
    const t = parseFilterTable(
      table(
        ':FORWARD DROP [0:0]',
        '-N LOGDROP',
        '-A FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT',
        '-A FORWARD ! -s 10.0.0.0/16 -p tcp --syn -m multiport ! --sports 1:1023,8080 -j LOGDROP',
        '-A FORWARD -p icmp --icmp-type 3/4 -j ACCEPT',
        '-A FORWARD -p udp -j REJECT --reject-with host-prohib',
        '-A LOGDROP -j LOG --log-prefix "drop " --log-level debug',
        '-A LOGDROP -j DROP',
      ),
      'f',
    );
    expect(t.policy).toEqual({ INPUT: 'ACCEPT', FORWARD: 'DROP', OUTPUT: 'ACCEPT' });
    expect(t.userChains).toEqual(['LOGDROP']);
    const f = t.chains.FORWARD;
    expect(f[0].ctstate).toEqual({ states: CTSTATE_ESTABLISHED | CTSTATE_RELATED, neg: false, module: 'state' });
    expect(f[1]).toMatchObject({
      target: 'JUMP',
      chain: 'LOGDROP',
      multiport: { dir: 'sports', lo: [1, 8080], hi: [1023, 8080], neg: true },
    });
    expect(f[2].icmp).toEqual({ type: 3, codeLo: 4, codeHi: 4, neg: false });
    expect(f[3].rejectWith).toBe('icmp-host-prohibited');
    expect(t.chains.LOGDROP[0]).toMatchObject({ target: 'LOG', logPrefix: 'drop ', logLevel: 7 });
    expect(parseFilterTable(t.text, 'again').text).toBe(t.text);
    expect(t.text).toContain('-A FORWARD -p icmp -m icmp --icmp-type 3/4 -j ACCEPT');
  });

  it.each([
    ['-A FORWARD -p udp -j REJECT --reject-with tcp-reset', "tcp-reset needs '-p tcp'"],
    ['-A FORWARD -j REJECT --reject-with icmp-echo-reply', "'icmp-echo-reply' is not a reject type"],
    ['-A FORWARD -m multiport --dports 80 -j ACCEPT', "'-m multiport' needs '-p tcp'"],
    ['-A FORWARD -p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15:16 -j ACCEPT', 'too many ports'],
    ['-A FORWARD -p tcp --dports 80 -j ACCEPT', "needs '-m multiport'"],
    ['-A FORWARD -m conntrack --ctstate SNAT -j ACCEPT', "state 'SNAT' is not modelled"],
    ['-A FORWARD -m state ! --state NEW -j ACCEPT', "'! --state'"],
    ['-A FORWARD --icmp-type 8 -j ACCEPT', "needs '-p icmp'"],
    ['-A FORWARD -j NOPE', "target 'NOPE' is not supported in the filter table"],
    ['-A FORWARD -j FORWARD', 'a built-in chain cannot be jumped to'],
    ['-A INPUT -o eth0 -j DROP', "'-o' cannot be used in INPUT"],
    ['-A OUTPUT -i eth0 -j DROP', "'-i' cannot be used in OUTPUT"],
    ['-A FORWARD -j DROP --log-prefix x', "'--log-prefix' belongs to -j LOG"],
    ['-A NOCHAIN -j DROP', "chain 'NOCHAIN' does not exist"],
    [':FORWARD REJECT [0:0]', "policy 'REJECT'"],
    ['-N NATLAB_X', 'natlab'],
  ])('%s: %s', (line, msg) => {
    expect(() => parseFilterTable(table(line), 'f.txt')).toThrow(msg);
    try {
      parseFilterTable(table(line), 'f.txt');
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      expect((e as Error).message).toMatch(/^f\.txt:2: line 2: /);
    }
  });

  it('refuses a loop of user chains', () => {
    expect(() => parseFilterTable(table('-N A', '-N B', '-A A -j B', '-A B -j A'), 'f')).toThrow(/reaches itself/);
  });

  it("a scenario takes *filter beside *nat in an instance's iptables (errors name the key and line)", () => {
    const base = {
      vpc: { cidr: '10.0.0.0/16' },
      routeTables: { public: [{ dest: '0.0.0.0/0', target: 'igw' }] },
      subnets: { public: { cidr: '10.0.0.0/24', routeTable: 'public' } },
      instances: {
        nat: {
          subnet: 'public',
          privateIp: '10.0.0.10',
          sourceDestCheck: false,
          iptables:
            '*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT\nCOMMIT\n*nat\n-A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n',
        },
      },
      internet: { hosts: ['198.51.100.0/24'] },
    };
    const s = parseObject(base);
    expect(s.instances[0].filter?.policy.FORWARD).toBe('DROP');
    expect(s.instances[0].nat?.chains.POSTROUTING).toHaveLength(1);
  });
});
