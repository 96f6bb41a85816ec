// The NAT instance's filter table in the model (src/model/filter.ts, engine hooks): verdicts by
// rule and policy, conntrack state before the filter (INVALID dropped), REJECT's answers as
// ipt_REJECT sends them (ICMP destination unreachable with the reject code, TCP reset), user chains
// with LOG and RETURN, and per-rule counters.
import { describe, expect, it } from 'vitest';
import { F_ACK, F_FIN, F_RST, F_SYN, PROTO_ICMP, PROTO_TCP } from '../../src/packet/index.ts';
import { parseFilterTable } from '../../src/scenario/iptables-filter.ts';
import { formatFilterListing } from '../../src/model/listing.ts';
import { DROP_FILTER_DROP, DROP_FILTER_REJECT, FATE_DELIVERED, FATE_DROPPED } from '../../src/spec/reasons.ts';
import type { Scenario } from '../../src/spec/scenario.ts';
import { A, engine, expectValidOutputs, idx, ping, pv, scenario, send, tcp, udp } from './helpers.ts';

function withFilter(lines: string[], policy = 'ACCEPT', user: string[] = []): Scenario {
  return scenario((s) => {
    s.instances[idx(s, 'nat')].filter = parseFilterTable(
      [
        '*filter',
        ':INPUT ACCEPT [0:0]',
        `:FORWARD ${policy} [0:0]`,
        ':OUTPUT ACCEPT [0:0]',
        ...user.map((u) => `:${u} - [0:0]`),
        ...lines,
        'COMMIT',
        '',
      ].join('\n'),
      'test',
    );
  });
}

const HARDENED = [
  '-A FORWARD -m conntrack --ctstate INVALID -j DROP',
  '-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  '-A FORWARD -s 10.0.0.0/16 -p tcp -m multiport --dports 80,443 -j ACCEPT',
  '-A FORWARD -s 10.0.0.0/16 -p icmp --icmp-type echo-request -j ACCEPT',
];

describe('filter table (model)', () => {
  it('policy DROP with ESTABLISHED,RELATED: allowed ports pass both ways, others are dropped by the policy', () => {
    const s = withFilter(HARDENED, 'DROP');
    const e = engine(s);
    const out = send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443'));
    expect(out.fate).toBe(FATE_DELIVERED);
    expect(out.hops.some((h) => h.name.endsWith('filter FORWARD') && /ACCEPT by FORWARD rule 3/.test(h.note))).toBe(
      true,
    );
    const nat = pv(out.outputs[0].frame);
    const back = send(e, s, 'internet', tcp(`198.51.100.7:443`, `203.0.113.10:${nat.sport}`, F_SYN | F_ACK), 1);
    expect(back.fate).toBe(FATE_DELIVERED);
    expect(back.hops.some((h) => /ACCEPT by FORWARD rule 2/.test(h.note))).toBe(true);
    const smtp = send(e, s, 'app', tcp('10.0.1.10:40001', '198.51.100.7:25'), 2);
    expect([smtp.fate, smtp.reason]).toEqual([FATE_DROPPED, DROP_FILTER_DROP]);
    expect(smtp.hops.at(-1)?.note).toMatch(/FORWARD policy DROP/);
    expect(smtp.outputs).toHaveLength(0);
    const c = e.filterCountersSync().filter((x) => x.chain === 'FORWARD');
    expect(c.find((x) => x.rule === 2)?.packets).toBe(1);
    expect(c.find((x) => x.rule === 1)?.packets).toBe(1);
    expect(c.find((x) => x.rule === -1)?.packets).toBe(1);
  });

  it('conntrack runs first: an INVALID packet (SYN+FIN) is dropped by --ctstate INVALID', () => {
    const s = withFilter(HARDENED, 'ACCEPT');
    const e = engine(s);
    const r = send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_SYN | F_FIN));
    expect([r.fate, r.reason]).toEqual([FATE_DROPPED, DROP_FILTER_DROP]);
    expect(r.hops.at(-1)?.note).toMatch(/FORWARD rule 1.*ctstate INVALID/);
    expect(e.conntrackSync()).toHaveLength(0);
  });

  it('REJECT with ICMP: destination unreachable with the reject code, quoting the packet', () => {
    for (const [w, code] of [
      ['', 3],
      [' --reject-with icmp-host-prohibited', 10],
      [' --reject-with icmp-net-unreachable', 0],
      [' --reject-with icmp-admin-prohibited', 13],
    ] as const) {
      const s = withFilter([`-A FORWARD -p udp --dport 53 -j REJECT${w}`]);
      const e = engine(s);
      const r = send(e, s, 'app', udp('10.0.1.10:5353', '198.51.100.7:53'));
      expect([r.fate, r.reason]).toEqual([FATE_DROPPED, DROP_FILTER_REJECT]);
      expect(r.outputs).toHaveLength(1);
      const err = pv(r.outputs[0].frame);
      expect([err.proto, err.icmpType, err.icmpCode]).toEqual([PROTO_ICMP, 3, code]);
      expect([err.src, err.dst]).toEqual([A('10.0.0.10'), A('10.0.1.10')]);
      expect([err.innerSrc, err.innerDst, err.innerDport]).toEqual([A('10.0.1.10'), A('198.51.100.7'), 53]);
      expect(e.conntrackSync()).toHaveLength(0);
      expectValidOutputs(r);
    }
  });

  it('REJECT with tcp-reset: an RST from the destination, RST+ACK for a SYN; none for an RST', () => {
    const s = withFilter(['-A FORWARD -p tcp --dport 25 -j REJECT --reject-with tcp-reset']);
    const e = engine(s);
    const r = send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:25', F_SYN, { seq: 5000 }));
    expect([r.fate, r.reason]).toEqual([FATE_DROPPED, DROP_FILTER_REJECT]);
    expect(r.outputs).toHaveLength(1);
    const rst = pv(r.outputs[0].frame);
    expect([rst.proto, rst.src, rst.dst, rst.sport, rst.dport]).toEqual([
      PROTO_TCP,
      A('198.51.100.7'),
      A('10.0.1.10'),
      25,
      40000,
    ]);
    expect([rst.tcpFlags, rst.tcpAck, rst.tcpSeq, rst.df, rst.ipId]).toEqual([F_RST | F_ACK, 5001, 0, 1, 0]);
    expectValidOutputs(r);
    const none = send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:25', F_RST), 1);
    expect(none.reason).toBe(DROP_FILTER_REJECT);
    expect(none.outputs).toHaveLength(0);
  });

  it('user chain: LOG counts and goes on, RETURN goes back, the jump rule counts', () => {
    const s = withFilter(
      [
        '-A FORWARD -p icmp -j CHK',
        '-A CHK -j LOG --log-prefix "icmp: "',
        '-A CHK -s 10.0.1.11 -j RETURN',
        '-A CHK -j DROP',
      ],
      'ACCEPT',
      ['CHK'],
    );
    const e = engine(s);
    const r = send(e, s, 'app', ping('10.0.1.10', '198.51.100.7', 7));
    expect([r.fate, r.reason]).toEqual([FATE_DROPPED, DROP_FILTER_DROP]);
    expect(r.hops.at(-1)?.note).toMatch(/CHK rule 3.*LOG \(counted\) at CHK rule 1/);
    const c = e.filterCountersSync();
    expect(c.find((x) => x.chain === 'CHK' && x.rule === 0)?.packets).toBe(1);
    expect(c.find((x) => x.chain === 'FORWARD' && x.rule === 0)?.packets).toBe(1);
  });

  it('INPUT: packets to the instance itself are filtered before delivery', () => {
    const s = scenario((x) => {
      x.instances[idx(x, 'nat')].filter = parseFilterTable(
        '*filter\n:INPUT DROP [0:0]\n-A INPUT -p icmp -j ACCEPT\nCOMMIT\n',
        'test',
      );
    });
    const e = engine(s);
    expect(send(e, s, 'app', ping('10.0.1.10', '10.0.0.10', 1)).fate).toBe(FATE_DELIVERED);
    const r = send(e, s, 'app', tcp('10.0.1.10:40000', '10.0.0.10:22'));
    expect([r.fate, r.reason]).toEqual([FATE_DROPPED, DROP_FILTER_DROP]);
  });

  it('iptables -L -v -n: the lines iptables 1.8 prints for the same table (protocol names, as the nat listing)', () => {
    const t = parseFilterTable(
      [
        '*filter',
        ':FORWARD DROP [0:0]',
        ':EGRESS - [0:0]',
        '-A FORWARD -m state --state RELATED,ESTABLISHED -j ACCEPT',
        '-A FORWARD -s 10.0.0.0/16 -j EGRESS',
        '-A EGRESS -p udp -m udp --sport 1:1023 --dport 53 -j ACCEPT',
        '-A EGRESS -p icmp -m icmp --icmp-type 3/4 -j ACCEPT',
        '-A EGRESS -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -m comment --comment "new tcp" -j LOG --log-prefix "egress refused: "',
        '-A EGRESS ! -d 192.0.2.0/24 -i eth0 -p tcp -j REJECT --reject-with tcp-reset',
        'COMMIT',
        '',
      ].join('\n'),
      'test',
    );
    const lines = formatFilterListing(t, [{ instance: 0, chain: 'FORWARD', rule: -1, packets: 3, bytes: 120 }]).split(
      '\n',
    );
    expect(lines).toContain('Chain FORWARD (policy DROP 3 packets, 120 bytes)');
    expect(lines).toContain('Chain EGRESS (1 references)');
    expect(lines).toContain(
      '    0     0 ACCEPT     all  --  *      *       0.0.0.0/0            0.0.0.0/0            state RELATED,ESTABLISHED',
    );
    expect(lines).toContain(
      '    0     0 ACCEPT     udp  --  *      *       0.0.0.0/0            0.0.0.0/0            udp spts:1:1023 dpt:53',
    );
    expect(lines).toContain(
      '    0     0 ACCEPT     icmp --  *      *       0.0.0.0/0            0.0.0.0/0            icmptype 3 code 4',
    );
    expect(lines).toContain(
      '    0     0 LOG        tcp  --  *      *       0.0.0.0/0            0.0.0.0/0            tcp flags:0x17/0x02 /* new tcp */ LOG flags 0 level 4 prefix "egress refused: "',
    );
    expect(lines).toContain(
      '    0     0 REJECT     tcp  --  eth0   *       0.0.0.0/0           !192.0.2.0/24         reject-with tcp-reset',
    );
  });
});
