// NAT rules of docs/semantics.md §8: rule matching with `!`, ACCEPT/RETURN/policy counters,
// get_unique_tuple (preservation, find_appropriate_src reuse, search ranges, --to-ports, random,
// ICMP ids), DNAT port forwarding both ways, and the iptables -L -v -n listing.
import { describe, expect, it } from 'vitest';
import { F_ACK, F_SYN } from '../../src/packet/index.ts';
import { DROP_IGW_NO_PUBLIC_IP, FATE_DELIVERED, CT_ESTABLISHED } from '../../src/spec/reasons.ts';
import { POINT_INTERNET } from '../../src/spec/scenario.ts';
import { formatNatTableListing } from '../../src/model/index.ts';
import { iptablesNum } from '../../src/model/listing.ts';
import {
  A,
  engine,
  expectValidOutputs,
  idx,
  natRules,
  ping,
  point,
  pv,
  scenario,
  send,
  tcp,
  udp,
  withApp2,
} from './helpers.ts';

const MASQ = '-A POSTROUTING -s 10.0.0.0/16 -o eth0 -j MASQUERADE';

function counter(e: ReturnType<typeof engine>, chain: string, rule: number): { packets: number; bytes: number } {
  const c = e.natCountersSync().find((x) => x.chain === chain && x.rule === rule);
  if (!c) throw new Error(`no counter ${chain} ${rule}`);
  return { packets: c.packets, bytes: c.bytes };
}

describe('mapping choice (get_unique_tuple)', () => {
  it('a second flow from the same source port reuses its mapping for a new destination (find_appropriate_src)', () => {
    const s = scenario(withApp2);
    const e = engine(s);
    send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443'));
    const r2 = send(e, s, 'app2', tcp('10.0.1.11:40000', '198.51.100.7:443'));
    const p = pv(r2.outputs[0].frame).sport;
    expect(p).not.toBe(40000);
    const r3 = send(e, s, 'app2', tcp('10.0.1.11:40000', '198.51.100.8:443'));
    expect(pv(r3.outputs[0].frame).sport).toBe(p);
  });

  it("the search stays in Linux's ranges: <512 → 1..511, 512..1023 → 600..1023, else 1024..65535", () => {
    for (const [port, lo, hi] of [
      [80, 1, 511],
      [700, 600, 1023],
      [5000, 1024, 65535],
    ]) {
      const s = scenario(withApp2);
      for (let seed = 1; seed <= 5; seed++) {
        const e = engine(s, seed);
        send(e, s, 'app', tcp(`10.0.1.10:${port}`, '198.51.100.7:443'));
        const r = send(e, s, 'app2', tcp(`10.0.1.11:${port}`, '198.51.100.7:443'));
        const got = pv(r.outputs[0].frame).sport;
        expect(got).not.toBe(port);
        expect(got).toBeGreaterThanOrEqual(lo);
        expect(got).toBeLessThanOrEqual(hi);
      }
    }
  });

  it('is deterministic per seed', () => {
    const s = scenario(withApp2);
    const run = (seed: number): number => {
      const e = engine(s, seed);
      send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443'));
      return pv(send(e, s, 'app2', tcp('10.0.1.11:40000', '198.51.100.7:443')).outputs[0].frame).sport;
    };
    expect(run(42)).toBe(run(42));
    expect(new Set([1, 2, 3, 4, 5, 6].map(run)).size).toBeGreaterThan(1);
  });

  it('ICMP echo ids are preserved, and a clashing id is remapped and restored on the reply', () => {
    const s = scenario(withApp2);
    const e = engine(s);
    const r1 = send(e, s, 'app', ping('10.0.1.10', '192.0.2.1', 7));
    const r2 = send(e, s, 'app2', ping('10.0.1.11', '192.0.2.1', 7));
    expect(pv(r1.outputs[0].frame).icmpId).toBe(7);
    const id2 = pv(r2.outputs[0].frame).icmpId;
    expect(id2).not.toBe(7);
    expectValidOutputs(r2);
    const back = send(e, s, 'internet', ping('192.0.2.1', '203.0.113.10', id2, true));
    expect(back.outputs[0].egress).toBe(point(s, 'app2'));
    expect(pv(back.outputs[0].frame).icmpId).toBe(7);
    expectValidOutputs(back);
  });

  it('--random-fully skips port preservation', () => {
    const s = scenario((x) => natRules(x, [`${MASQ} --random-fully`]));
    const e = engine(s);
    const ports = [40000, 40001, 40002, 40003].map(
      (p) => pv(send(e, s, 'app', tcp(`10.0.1.10:${p}`, '198.51.100.7:443')).outputs[0].frame).sport,
    );
    expect(ports).not.toEqual([40000, 40001, 40002, 40003]);
    for (const p of ports) expect(p).toBeGreaterThanOrEqual(1024);
  });

  it('SNAT --to-source with a port range keeps an in-range port and searches the range otherwise', () => {
    const s = scenario((x) => {
      withApp2(x);
      natRules(x, ['-A POSTROUTING -s 10.0.0.0/16 -o eth0 -p tcp -j SNAT --to-source 10.0.0.10:2000-2001']);
    });
    const e = engine(s);
    const a = pv(send(e, s, 'app', tcp('10.0.1.10:2001', '198.51.100.7:443')).outputs[0].frame);
    expect(a.src).toBe(A('203.0.113.10'));
    expect(a.sport).toBe(2001);
    const b = pv(send(e, s, 'app2', tcp('10.0.1.11:40000', '198.51.100.7:443')).outputs[0].frame);
    expect(b.sport).toBe(2000);
  });
});

describe('rules and counters', () => {
  it('`!` matches: a host excluded from MASQUERADE goes out un-NATed (null binding) and the IGW drops it', () => {
    const s = scenario((x) => {
      withApp2(x);
      natRules(x, ['-A POSTROUTING ! -s 10.0.1.11/32 -o eth0 -j MASQUERADE']);
    });
    const e = engine(s);
    expect(send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443')).fate).toBe(FATE_DELIVERED);
    const r = send(e, s, 'app2', tcp('10.0.1.11:40000', '198.51.100.7:443'));
    expect(r.reason).toBe(DROP_IGW_NO_PUBLIC_IP);
    expect(counter(e, 'POSTROUTING', 0)).toEqual({ packets: 1, bytes: 40 });
    expect(counter(e, 'POSTROUTING', -1)).toEqual({ packets: 1, bytes: 40 });
    expect(e.conntrackSync()).toHaveLength(2); // the un-NATed flow still has an entry
  });

  it('ACCEPT stops the chain (its counter only); RETURN falls to the policy, which counts too', () => {
    const s = scenario((x) => {
      withApp2(x);
      natRules(x, ['-A POSTROUTING -s 10.0.1.11/32 -j ACCEPT', '-A POSTROUTING -p udp -j RETURN', MASQ]);
    });
    const e = engine(s);
    send(e, s, 'app2', tcp('10.0.1.11:40000', '198.51.100.7:443'));
    expect(counter(e, 'POSTROUTING', 0).packets).toBe(1);
    expect(counter(e, 'POSTROUTING', -1).packets).toBe(0);
    send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_SYN));
    send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443', F_SYN)); // retransmission: rules do not run
    expect(counter(e, 'POSTROUTING', 2)).toEqual({ packets: 1, bytes: 40 });
    const r = send(e, s, 'app', udp('10.0.1.10:5000', '198.51.100.53:53', { len: 4 })); // 32 bytes
    expect(r.reason).toBe(DROP_IGW_NO_PUBLIC_IP); // RETURN: no NAT
    expect(counter(e, 'POSTROUTING', 1)).toEqual({ packets: 1, bytes: 32 });
    expect(counter(e, 'POSTROUTING', -1)).toEqual({ packets: 1, bytes: 32 });
  });

  it('DNAT port forward: internet → Elastic IP:8080 reaches app:80, the reply is reverse-DNATed', () => {
    const s = scenario((x) =>
      natRules(x, [
        '-A PREROUTING -d 10.0.0.10/32 -i eth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.1.10:80',
        MASQ,
      ]),
    );
    const e = engine(s);
    const r = send(e, s, 'internet', tcp('192.0.2.50:51000', '203.0.113.10:8080'));
    expect(r.fate).toBe(FATE_DELIVERED);
    expect(r.outputs[0].egress).toBe(point(s, 'app'));
    expect(r.hops.map((h) => h.name)).toContain('DNAT');
    const d = pv(r.outputs[0].frame);
    expect([d.src, d.sport, d.dst, d.dport]).toEqual([A('192.0.2.50'), 51000, A('10.0.1.10'), 80]);
    expectValidOutputs(r);
    const back = send(e, s, 'app', tcp('10.0.1.10:80', '192.0.2.50:51000', F_SYN | F_ACK, { ack: 1001 }));
    expect(back.ct).toBe(CT_ESTABLISHED);
    expect(back.outputs[0].egress).toBe(POINT_INTERNET);
    const b = pv(back.outputs[0].frame);
    expect([b.src, b.sport, b.dst, b.dport]).toEqual([A('203.0.113.10'), 8080, A('192.0.2.50'), 51000]);
    expect(back.hops.map((h) => h.name)).toContain('reverse DNAT');
    expectValidOutputs(back);
    expect(counter(e, 'PREROUTING', 0)).toEqual({ packets: 1, bytes: 40 });
    expect(counter(e, 'POSTROUTING', -1)).toEqual({ packets: 1, bytes: 40 }); // source 192.0.2.50 is not -s 10.0.0.0/16
  });
});

describe('iptables -t nat -L -v -n', () => {
  it('prints the built-in table with connection counters exactly like iptables', () => {
    const s = scenario();
    const e = engine(s);
    send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443'));
    send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443')); // retransmission: not counted
    send(e, s, 'internet', tcp('198.51.100.7:443', '203.0.113.10:40000', F_SYN | F_ACK, { ack: 1001 })); // reply: not counted
    expect(formatNatTableListing(e, idx(s, 'nat'))).toBe(
      [
        'Chain PREROUTING (policy ACCEPT 1 packets, 40 bytes)',
        ' pkts bytes target     prot opt in     out     source               destination         ',
        '',
        'Chain INPUT (policy ACCEPT 0 packets, 0 bytes)',
        ' pkts bytes target     prot opt in     out     source               destination         ',
        '',
        'Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)',
        ' pkts bytes target     prot opt in     out     source               destination         ',
        '',
        'Chain POSTROUTING (policy ACCEPT 0 packets, 0 bytes)',
        ' pkts bytes target     prot opt in     out     source               destination         ',
        '    1    40 MASQUERADE  all  --  *      eth0    10.0.0.0/16          0.0.0.0/0           ',
        '',
      ].join('\n'),
    );
  });

  it('prints matches and target options', () => {
    const s = scenario((x) =>
      natRules(x, [
        '-A PREROUTING -d 10.0.0.10/32 -i eth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.1.10:80',
        '-A POSTROUTING ! -d 10.0.0.0/16 -o eth0 -p udp -m udp --sport 1000:2000 -j MASQUERADE --to-ports 1024-65535 --random',
      ]),
    );
    const text = formatNatTableListing(engine(s), idx(s, 'nat')).split('\n');
    expect(text[2]).toBe(
      '    0     0 DNAT       tcp  --  eth0   *       0.0.0.0/0            10.0.0.10            tcp dpt:8080 to:10.0.1.10:80',
    );
    expect(text[12]).toBe(
      '    0     0 MASQUERADE  udp  --  *      eth0    0.0.0.0/0           !10.0.0.0/16          udp spts:1000:2000 masq ports: 1024-65535 random',
    );
  });

  it('abbreviates large counters like xtables_print_num', () => {
    expect(iptablesNum(99999)).toBe('99999 ');
    expect(iptablesNum(100000)).toBe(' 100K ');
    expect(iptablesNum(123456789)).toBe(' 123M ');
    expect(iptablesNum(60, false)).toBe('60 ');
  });
});
