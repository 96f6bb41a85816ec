// Security groups and network ACLs in the model (docs/semantics.md §11).
import { describe, expect, it } from 'vitest';
import { loadScenario, resolveScenarioPath } from '../../src/scenario/index.ts';
import { parseObject, baseObject } from '../scenario/helpers.ts';
import { F_ACK, F_SYN } from '../../src/packet/index.ts';
import {
  DROP_NACL_DENY,
  DROP_SG_ALLOWANCE,
  DROP_SG_DENY,
  FATE_DELIVERED,
  FATE_DROPPED,
  reasonName,
} from '../../src/spec/reasons.ts';
import type { Scenario } from '../../src/spec/scenario.ts';
import { engine, idx, ping, send, tcp, udp } from './helpers.ts';

const NATSG = () => loadScenario(resolveScenarioPath('vpc-nat-instance-sg'));

/** The test scenario (nat + app) with filters given in the file format. */
function filtered(extra: (o: Record<string, any>) => void): Scenario {
  const o = baseObject();
  o.instances.web = { subnet: 'public', privateIp: '10.0.0.20', elasticIp: '203.0.113.20' };
  extra(o);
  return parseObject(o);
}

function reason(r: { fate: number; reason: number }): string {
  return r.fate === FATE_DELIVERED ? 'delivered' : reasonName(r.reason);
}

describe('security groups (model)', () => {
  it("AWS's NATSG group: HTTPS through the NAT and its reply pass; DNS is dropped at the NAT's ENI", () => {
    const s = NATSG();
    const e = engine(s);
    const syn = send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443'));
    expect(reason(syn)).toBe('delivered');
    expect(syn.hops.map((h) => h.name)).toContain('security groups nat (inbound)');
    const synack = send(e, s, 'internet', tcp('198.51.100.7:443', '203.0.113.10:40000', F_SYN | F_ACK));
    expect(reason(synack)).toBe('delivered');
    expect(synack.hops.find((h) => h.name === 'security groups nat (inbound)')?.note).toMatch(
      /tracked flow \(response\)/,
    );
    const dns = send(e, s, 'app', udp('10.0.1.10:5353', '198.51.100.7:53'));
    expect(dns.fate).toBe(FATE_DROPPED);
    expect(dns.reason).toBe(DROP_SG_DENY);
    expect(dns.hops[dns.hops.length - 1].name).toBe('security groups nat (inbound)');
  });

  it('an unsolicited packet from the internet to web is dropped unless a rule allows it', () => {
    const s = NATSG();
    const e = engine(s);
    expect(reason(send(e, s, 'internet', tcp('198.51.100.7:5000', '203.0.113.20:443')))).toBe('delivered');
    expect(reason(send(e, s, 'internet', tcp('198.51.100.7:5000', '203.0.113.20:22')))).toBe('sg-deny');
  });

  it('tracked responses pass whatever the rules say; outbound from web is tracked by its default rule', () => {
    const s = NATSG();
    const e = engine(s);
    // web's group has no inbound rule for 53: the response passes because the flow is tracked.
    expect(reason(send(e, s, 'web', udp('10.0.0.20:5000', '198.51.100.53:53')))).toBe('delivered');
    expect(reason(send(e, s, 'internet', udp('198.51.100.53:53', '203.0.113.20:5000')))).toBe('delivered');
    // A different remote port is another flow: dropped.
    expect(reason(send(e, s, 'internet', udp('198.51.100.53:54', '203.0.113.20:5000')))).toBe('sg-deny');
  });

  it('a flow allowed by 0.0.0.0/0 rules both ways (all ports back) is untracked; ICMP always tracked', () => {
    const s = filtered((o) => {
      o.securityGroups = {
        open: {
          inbound: [
            { protocol: 'tcp', ports: 80, cidr: '0.0.0.0/0' },
            { protocol: 'icmp', cidr: '0.0.0.0/0' },
          ],
          outbound: [{ protocol: 'all', cidr: '0.0.0.0/0' }],
        },
      };
      o.instances.web.securityGroups = ['open'];
    });
    const e = engine(s);
    const r = send(e, s, 'internet', tcp('198.51.100.7:5000', '203.0.113.20:80'));
    expect(reason(r)).toBe('delivered');
    expect(r.hops.find((h) => h.name === 'security groups web (inbound)')?.note).toMatch(/untracked/);
    expect(e.securityTracking(idx(s, 'web'))).toEqual({ tracked: 0, allowanceExceeded: 0 });
    expect(reason(send(e, s, 'internet', ping('198.51.100.7', '203.0.113.20', 7)))).toBe('delivered');
    expect(e.securityTracking(idx(s, 'web'))?.tracked).toBe(1);
  });

  it('the allowance: a new tracked flow beyond it is dropped and counted; expiry frees room', () => {
    const s = filtered((o) => {
      o.securityGroups = { g: { inbound: [] } };
      o.instances.web.securityGroups = ['g'];
      o.instances.web.connectionTracking = { allowance: 2 };
    });
    const e = engine(s);
    const w = idx(s, 'web');
    expect(reason(send(e, s, 'web', udp('10.0.0.20:1', '198.51.100.7:53')))).toBe('delivered');
    expect(reason(send(e, s, 'web', udp('10.0.0.20:2', '198.51.100.7:53')))).toBe('delivered');
    const third = send(e, s, 'web', udp('10.0.0.20:3', '198.51.100.7:53'));
    expect(third.reason).toBe(DROP_SG_ALLOWANCE);
    expect(e.securityTracking(w)).toEqual({ tracked: 2, allowanceExceeded: 1 });
    // The tracked flows still pass (existing entries need no room).
    expect(reason(send(e, s, 'web', udp('10.0.0.20:1', '198.51.100.7:53', {}), 1000))).toBe('delivered');
    // UDP timeout 30 s: flow 2 (last seen at 0) is gone at 30 000 ms, flow 1 (1 000 ms) is not.
    expect(reason(send(e, s, 'web', udp('10.0.0.20:3', '198.51.100.7:53'), 29_999))).toBe('sg-allowance');
    expect(reason(send(e, s, 'web', udp('10.0.0.20:3', '198.51.100.7:53'), 30_000))).toBe('delivered');
    expect(e.securityTracking(w)).toEqual({ tracked: 2, allowanceExceeded: 2 });
  });

  it('UDP: 30 s until a second request-response transaction, then the 180 s stream timeout', () => {
    const s = filtered((o) => {
      o.securityGroups = { g: { inbound: [] } };
      o.instances.web.securityGroups = ['g'];
    });
    const e = engine(s);
    const out = () => udp('10.0.0.20:5000', '198.51.100.7:53');
    const back = () => udp('198.51.100.7:53', '203.0.113.20:5000');
    send(e, s, 'web', out(), 0);
    send(e, s, 'internet', back(), 10);
    // One transaction: the response 30 s after the last packet is no longer tracked.
    expect(reason(send(e, s, 'internet', back(), 30_010))).toBe('sg-deny');
    send(e, s, 'web', out(), 40_000);
    send(e, s, 'internet', back(), 40_010);
    send(e, s, 'web', out(), 40_020);
    const r = send(e, s, 'internet', back(), 40_030);
    expect(r.hops.find((h) => h.name === 'security groups web (inbound)')?.note).toMatch(/idle timeout 180 s/);
    expect(reason(send(e, s, 'internet', back(), 40_030 + 179_999))).toBe('delivered');
  });

  it('a flow created after a long-lived one still expires on time (the tracker scans only when an entry can expire)', () => {
    const s = filtered((o) => {
      o.securityGroups = { g: { inbound: [] } };
      o.instances.web.securityGroups = ['g'];
    });
    const e = engine(s);
    const w = idx(s, 'web');
    // An established TCP flow: its entry lives 432 000 s, so after the SYN's short timer has been
    // scanned away the earliest expiry the tracker knows is days away...
    send(e, s, 'web', tcp('10.0.0.20:6000', '198.51.100.7:443', F_SYN), 0);
    send(e, s, 'internet', tcp('198.51.100.7:443', '203.0.113.20:6000', F_SYN | F_ACK), 1);
    send(e, s, 'web', tcp('10.0.0.20:6000', '198.51.100.7:443', F_ACK), 2);
    e.advanceSync(600_000_000);
    expect(e.securityTracking(w)?.tracked).toBe(1);
    // ...and a UDP flow created now (30 s) must lower it: gone exactly 30 s later, TCP stays.
    send(e, s, 'web', udp('10.0.0.20:5000', '198.51.100.7:53'), 600_000);
    expect(e.securityTracking(w)?.tracked).toBe(2);
    e.advanceSync(629_999_000);
    expect(e.securityTracking(w)?.tracked).toBe(2);
    e.advanceSync(630_000_000);
    expect(e.securityTracking(w)?.tracked).toBe(1);
  });

  it('a rule naming a group matches the private IPs of that group’s instances', () => {
    const s = filtered((o) => {
      o.securityGroups = {
        natsg: { inbound: [{ protocol: 'tcp', ports: 443, group: 'apps' }] },
        apps: {},
      };
      o.instances.nat.securityGroups = ['natsg'];
      o.instances.app.securityGroups = ['apps'];
      o.instances.web.securityGroups = ['natsg'];
    });
    const e = engine(s);
    expect(reason(send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443')))).toBe('delivered');
    // web is not in group apps: its packet to nat's own address is dropped at nat's ENI.
    expect(reason(send(e, s, 'web', tcp('10.0.0.20:40000', '10.0.0.10:443')))).toBe('sg-deny');
  });
});

describe('network ACLs (model)', () => {
  it('stateless: the reply into the private subnet needs the ephemeral range; inside a subnet no ACL applies', () => {
    const s = NATSG();
    const e = engine(s);
    // app's source port 1000 is outside the inbound 1024-65535 rule: the SYN/ACK is dropped.
    const syn = send(e, s, 'app', tcp('10.0.1.10:1000', '198.51.100.7:443'));
    expect(reason(syn)).toBe('delivered');
    const synack = send(e, s, 'internet', tcp('198.51.100.7:443', '203.0.113.10:1000', F_SYN | F_ACK));
    expect(synack.reason).toBe(DROP_NACL_DENY);
    expect(synack.hops[synack.hops.length - 1].note).toMatch(/rule \* deny/);
    // The same with port 40000 passes by rule 200.
    send(e, s, 'app', tcp('10.0.1.10:40000', '198.51.100.7:443'));
    const ok = send(e, s, 'internet', tcp('198.51.100.7:443', '203.0.113.10:40000', F_SYN | F_ACK));
    expect(reason(ok)).toBe('delivered');
    expect(ok.hops.find((h) => h.name.startsWith('network ACL'))?.note).toBe('rule 200 allow tcp 1024-65535 0.0.0.0/0');
    // web → nat: same subnet, no ACL hop at all.
    const same = send(e, s, 'web', udp('10.0.0.20:5000', '10.0.0.10:53'));
    expect(same.hops.some((h) => h.name.startsWith('network ACL'))).toBe(false);
  });

  it('the lowest-numbered matching rule decides, deny included', () => {
    const s = filtered((o) => {
      o.networkAcls = {
        pub: {
          subnets: ['public'],
          inbound: [
            { rule: 200, action: 'allow', protocol: 'all', cidr: '0.0.0.0/0' },
            { rule: 100, action: 'deny', protocol: 'icmp', icmpType: 8, cidr: '198.51.100.0/24' },
          ],
          outbound: [{ rule: 1, action: 'allow', protocol: 'all', cidr: '0.0.0.0/0' }],
        },
      };
    });
    const e = engine(s);
    expect(reason(send(e, s, 'internet', ping('198.51.100.7', '203.0.113.20', 1)))).toBe('nacl-deny');
    expect(reason(send(e, s, 'internet', ping('192.0.2.7', '203.0.113.20', 1)))).toBe('delivered');
    expect(reason(send(e, s, 'internet', udp('198.51.100.7:1', '203.0.113.20:53')))).toBe('delivered');
  });
});
