// Kernel oracle pieces that need no root: topology plan, stateless IGW, tool-output parsers.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { AGENT_SCRIPT } from '../../src/oracle/agent-script.ts';
import fc from 'fast-check';
import { loadOpenScenario, loadScenario } from '../../src/scenario/index.ts';
import { planTopology, TABLE_BASE } from '../../src/oracle/topology.ts';
import { igwMapOf, igwTranslate } from '../../src/oracle/igw.ts';
import {
  parseAgentStats,
  parseConntrackLine,
  parseConntrackList,
  parseFilterCounters,
  parseIptablesCounters,
} from '../../src/oracle/parse.ts';
import { NETNS_RE, netnsOwnerPid, newRunId, routerNetns } from '../../src/oracle/names.ts';
import {
  buildIcmpError,
  buildTcp,
  buildUdp,
  buildIcmpEcho,
  parseIpv4Addr as A,
  PacketView,
  parseIpv4,
  verifyIpv4Header,
  verifyL4Checksum,
  F_SYN,
  ICMP_DEST_UNREACH,
  PARSE_OK,
  checksumOf,
} from '../../src/packet/index.ts';
import { DROP_IGW_NO_PUBLIC_IP, DROP_IGW_UNKNOWN_DST, REASON_NONE } from '../../src/spec/reasons.ts';

const s = loadOpenScenario();
const idx = (n: string): number => s.instances.findIndex((i) => i.name === n);

describe('planTopology with security groups and network ACLs', () => {
  const sg = loadScenario('scenarios/vpc-nat-instance-sg.yaml');
  const plan = planTopology(sg, 'abc123');
  it('puts each filtered ENI on a namespace of its own between the instance and the router', () => {
    expect(plan.sg).toEqual(['natlab-abc123-s0', 'natlab-abc123-s1', 'natlab-abc123-s2']);
    for (const n of plan.netns) expect(NETNS_RE.test(n.name)).toBe(true);
    expect(plan.linkBatch).toContain('link add e0 type veth peer name er netns natlab-abc123-s0');
    expect(plan.sgLinkBatches[0]).toEqual({
      netns: 'natlab-abc123-s0',
      lines: ['link add ei type veth peer name eth0 netns natlab-abc123-i0'],
    });
  });
  it("gives the namespace the ENI's timeouts and the group rules behind header guards", () => {
    const ns = plan.netns.find((n) => n.name === 'natlab-abc123-s0');
    expect(ns?.setup).toContain('sysctl:net/netfilter/nf_conntrack_tcp_timeout_established=432000');
    expect(ns?.setup).toContain('sysctl:net/netfilter/nf_conntrack_tcp_timeout_syn_sent=120');
    const rules = ns?.iptablesOwn ?? '';
    expect(rules).toContain('-A SGI -s 10.0.1.0/24 -p tcp --dport 443 -j NLSGOK');
    expect(rules).toContain('-A SGI -f -g SGIN');
    // The no-header twin holds no port rule; NATSG has no all-ports rule, so it denies.
    expect(rules).not.toMatch(/-A SGIN .*--dport/);
    expect(rules).toContain('--connlimit-above 262144');
    expect(rules).toContain('-A FORWARD -m conntrack --ctstate NEW,ESTABLISHED --ctstatus CONFIRMED -j ACCEPT');
  });
  it('enters the ACL chains only where a packet crosses a subnet boundary', () => {
    const rules = plan.netns[0].iptablesOwn;
    // app (e2, private) -> the NAT instance (e0, public): out of private; nat -> app: into private.
    expect(rules).toContain('-A FORWARD -i e2 -o e0 -j NA0O');
    expect(rules).toContain('-A FORWARD -i e0 -o e2 -j NA0I');
    expect(rules).toContain('-A FORWARD -i igw -o e2 -j NA0I');
    expect(rules).not.toContain('-A FORWARD -i e0 -o e1');
    expect(rules).toContain('-A NA0I -p tcp --dport 1024:65535 -j RETURN');
    expect(rules).toMatch(/-A NA0I -j NLNACL\n/);
  });
});

describe('planTopology (built-in scenario)', () => {
  const plan = planTopology(s, 'abc123');
  it('names every namespace with the run prefix, and only those match the cleanup pattern', () => {
    expect(plan.netns.map((n) => n.name)).toEqual([
      'natlab-abc123-rt',
      'natlab-abc123-net',
      'natlab-abc123-i0',
      'natlab-abc123-i1',
      'natlab-abc123-i2',
    ]);
    for (const n of plan.netns) expect(NETNS_RE.test(n.name)).toBe(true);
    for (const other of [
      'natlab',
      'natlab-x',
      'foo-abc123-rt',
      'natlab-abc123-rt2',
      'netns1',
      'natlab-abc123-rt; rm -rf /',
    ]) {
      expect(NETNS_RE.test(other)).toBe(false);
    }
  });
  it('recovers the creating process id from a run id', () => {
    expect(netnsOwnerPid(routerNetns(newRunId()))).toBe(process.pid);
    expect(netnsOwnerPid('natlab-x')).toBe(-1);
  });
  it('creates veths from the router straight into their namespace (nothing in the host namespace)', () => {
    for (const l of plan.linkBatch)
      expect(l).toMatch(/^link add \S+ type veth peer name \S+( netns natlab-abc123-(i\d|net))?$/);
    // One per ENI, the internet link, the two sink pairs and the fast path's fence pair inside the router.
    expect(plan.linkBatch).toHaveLength(s.instances.length + 4);
    expect(plan.linkBatch).toContain('link add nlfa type veth peer name nlfb');
  });
  it('routes by incoming ENI with one kernel table per route table', () => {
    const rt = plan.netns[0].ipBatch;
    const app = idx('app');
    const priv = s.subnets[s.instances[app].subnet].routeTable;
    expect(rt).toContain(`rule add iif e${app} table ${TABLE_BASE + priv} pref ${1000 + app}`);
    expect(rt).toContain(`route replace 0.0.0.0/0 via 10.0.0.10 dev e${idx('nat')} onlink table ${TABLE_BASE + priv}`);
    expect(rt).toContain(`route replace 10.0.1.10/32 dev e${app} scope link table ${TABLE_BASE + priv}`);
  });
  it("puts every sender's source check before any receiver's destination check (the drop is the sender's)", () => {
    // Regression (model-vs-kernel campaign seed 880002 run 7): per-instance pairs let a receiver
    // listed earlier (a NAT with its check on) claim a spoofed packet its sender's ENI refuses.
    const two = structuredClone(s);
    for (const inst of two.instances) inst.sourceDestCheck = true;
    const rules = planTopology(two, 'abc123').netns[0].iptablesOwn.split('\n');
    const src = rules.map((l, i) => (l.includes('nl_sdsrc') ? i : -1)).filter((i) => i >= 0);
    const dst = rules.map((l, i) => (l.includes('nl_sddst') ? i : -1)).filter((i) => i >= 0);
    expect(src).toHaveLength(two.instances.length);
    expect(dst).toHaveLength(two.instances.length);
    expect(Math.max(...src)).toBeLessThan(Math.min(...dst));
  });
  it('loads the NAT instance nat table as written and sets its sysctls', () => {
    const nat = plan.netns.find((n) => n.instance === idx('nat'))!;
    expect(nat.forwarder).toBe(true);
    expect(nat.iptablesScenario).toBe(s.instances[idx('nat')].nat!.text);
    expect(nat.setup).toContain('sysctl:net/ipv4/ip_forward=1');
    expect(nat.setup).toContain('sysctl:net/ipv4/conf/eth0/send_redirects=0');
    expect(nat.setup).toContain('sysctl:net/netfilter/nf_conntrack_udp_timeout=30');
    expect(nat.setup).toContain('rxoff:eth0');
  });
  it('emulates source/dest check only where enabled', () => {
    const filter = plan.netns[0].iptablesOwn;
    expect(filter).toContain(`-A FORWARD -i e${idx('web')} ! -s 10.0.0.20/32`);
    expect(filter).not.toContain(`-i e${idx('nat')} !`);
  });
  it("keeps hosts' own answers in, forwarding errors out, and the router TTL-neutral", () => {
    const web = plan.netns.find((n) => n.instance === idx('web'))!;
    expect(web.forwarder).toBe(false);
    expect(web.iptablesOwn).toContain('-A OUTPUT -p icmp --icmp-type time-exceeded -j ACCEPT');
    expect(web.iptablesOwn).toMatch(/-A OUTPUT -m recent --name nl_localout --set --rsource -j DROP\nCOMMIT/);
    expect(web.iptablesOwn).not.toContain('conntrack');
    expect(plan.netns[0].iptablesOwn).toContain('-A PREROUTING -j TTL --ttl-inc 1');
  });
});

const map = igwMapOf(s);
const pv = new PacketView();

function checksumsValid(b: Uint8Array): boolean {
  expect(parseIpv4(b, 0, b.length, pv)).toBe(PARSE_OK);
  return verifyIpv4Header(b, pv) && verifyL4Checksum(b, pv);
}

describe('stateless IGW', () => {
  it('maps outbound sources and inbound destinations 1:1 with valid checksums', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 65535 }),
        fc.integer({ min: 1, max: 65535 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.boolean(),
        (sp, dp, payload, tcp) => {
          const out = tcp
            ? buildTcp({ src: A('10.0.0.10'), dst: A('198.51.100.7'), sport: sp, dport: dp, flags: F_SYN, payload })
            : buildUdp({ src: A('10.0.0.10'), dst: A('198.51.100.7'), sport: sp, dport: dp, payload });
          const r = igwTranslate(map, out, true);
          expect(r.reason).toBe(REASON_NONE);
          expect(checksumsValid(r.frame)).toBe(true);
          expect(pv.src).toBe(A('203.0.113.10'));
          expect(pv.sport).toBe(sp);
          const back = igwTranslate(map, r.frame, false);
          // Inbound maps destinations: the outbound frame's destination is not an EIP.
          expect(back.reason).toBe(DROP_IGW_UNKNOWN_DST);
        },
      ),
      { numRuns: 200 },
    );
  });
  it('keeps a zero UDP checksum zero and a wrong checksum wrong by the same amount', () => {
    const z = buildUdp({ src: A('198.51.100.7'), dst: A('203.0.113.20'), sport: 53, dport: 4000, noChecksum: true });
    const r = igwTranslate(map, z, false);
    expect((r.frame[26] << 8) | r.frame[27]).toBe(0);
    const good = buildUdp({
      src: A('198.51.100.7'),
      dst: A('203.0.113.20'),
      sport: 53,
      dport: 4000,
      payload: new Uint8Array([1, 2]),
    });
    const bad = new Uint8Array(good);
    bad[27] = (bad[27] + 5) & 255;
    const csum = (b: Uint8Array): number => (b[26] << 8) | b[27];
    const offset = (a: number, b: number): number => (a - b + 0xffff) % 0xffff;
    const before = offset(csum(bad), csum(good));
    const rg = igwTranslate(map, good, false);
    const rb = igwTranslate(map, bad, false);
    expect(parseIpv4(rb.frame, 0, rb.frame.length, pv)).toBe(PARSE_OK);
    expect(verifyL4Checksum(rb.frame, pv)).toBe(false);
    expect(offset(csum(rb.frame), csum(rg.frame))).toBe(before);
  });
  it('translates the quoted packet of an ICMP error (inbound: quoted source)', () => {
    const quoted = buildUdp({
      src: A('203.0.113.10'),
      dst: A('198.51.100.7'),
      sport: 40000,
      dport: 53,
      payload: new Uint8Array(5),
    });
    const err = buildIcmpError({
      src: A('198.51.100.1'),
      dst: A('203.0.113.10'),
      type: ICMP_DEST_UNREACH,
      code: 3,
      quoted,
    });
    const r = igwTranslate(map, err, false);
    expect(r.reason).toBe(REASON_NONE);
    expect(checksumsValid(r.frame)).toBe(true);
    expect(pv.dst).toBe(A('10.0.0.10'));
    expect(pv.innerSrc).toBe(A('10.0.0.10'));
    // The quoted IP header's checksum is valid too.
    expect(checksumOf(r.frame, pv.innerOff, pv.innerIhl)).toBe(0);
  });
  it('drops what has no mapping', () => {
    expect(igwTranslate(map, buildIcmpEcho({ src: A('10.0.1.10'), dst: A('198.51.100.7'), id: 1 }), true).reason).toBe(
      DROP_IGW_NO_PUBLIC_IP,
    );
    expect(
      igwTranslate(map, buildIcmpEcho({ src: A('198.51.100.7'), dst: A('203.0.113.99'), id: 1 }), false).reason,
    ).toBe(DROP_IGW_UNKNOWN_DST);
  });
});

describe('tool output parsers', () => {
  it('parses conntrack -L lines (tcp, udp unreplied, icmp)', () => {
    const text = [
      'tcp      6 431999 ESTABLISHED src=10.0.1.5 dst=93.184.216.34 sport=43512 dport=443 src=93.184.216.34 dst=10.0.0.10 sport=443 dport=43512 [ASSURED] mark=0 use=1',
      'udp      17 29 src=10.0.1.5 dst=8.8.8.8 sport=40000 dport=53 [UNREPLIED] src=8.8.8.8 dst=10.0.0.10 sport=53 dport=40000 mark=0 use=1',
      'icmp     1 29 src=10.0.1.5 dst=8.8.8.8 type=8 code=0 id=4321 src=8.8.8.8 dst=10.0.0.10 type=0 code=0 id=4321 mark=0 use=1',
      'conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.',
    ].join('\n');
    const l = parseConntrackList(text, 0);
    expect(l).toHaveLength(3);
    expect(l[0]).toMatchObject({ proto: 6, state: 'ESTABLISHED', timeout: 431999, assured: true, seenReply: true });
    expect(l[0].reply).toEqual({ src: A('93.184.216.34'), dst: A('10.0.0.10'), sport: 443, dport: 43512 });
    expect(l[1]).toMatchObject({ proto: 17, state: '', seenReply: false, assured: false });
    expect(l[2].orig).toEqual({ src: A('10.0.1.5'), dst: A('8.8.8.8'), sport: 4321, dport: 8 << 8 });
    expect(l[2].reply.dport).toBe(0);
    expect(
      parseConntrackLine(
        'ipv4     2 udp      17 29 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 mark=0 zone=0 use=2',
        1,
      )?.instance,
    ).toBe(1);
  });
  it('parses iptables -t nat -L -v -n -x counters (policy = rule -1)', () => {
    const text = `Chain PREROUTING (policy ACCEPT 3 packets, 106 bytes)
    pkts      bytes target     prot opt in     out     source               destination
       1       60 DNAT       6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpt:8080 to:10.0.0.20:80

Chain POSTROUTING (policy ACCEPT 0 packets, 0 bytes)
    pkts      bytes target     prot opt in     out     source               destination
       2       66 MASQUERADE  0    --  *      eth0    10.0.0.0/16          0.0.0.0/0
`;
    expect(parseIptablesCounters(text, 0)).toEqual([
      { instance: 0, chain: 'PREROUTING', rule: -1, packets: 3, bytes: 106 },
      { instance: 0, chain: 'PREROUTING', rule: 0, packets: 1, bytes: 60 },
      { instance: 0, chain: 'POSTROUTING', rule: -1, packets: 0, bytes: 0 },
      { instance: 0, chain: 'POSTROUTING', rule: 0, packets: 2, bytes: 66 },
    ]);
  });
  it("parses filter counters without natlab's own OUTPUT guard (its chain and the jump to it)", () => {
    const text = `Chain INPUT (policy DROP 4 packets, 240 bytes)
    pkts      bytes target     prot opt in     out     source               destination
       7      420 ACCEPT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstate RELATED,ESTABLISHED

Chain OUTPUT (policy ACCEPT 9 packets, 500 bytes)
    pkts      bytes target     prot opt in     out     source               destination
       3      180 nl_guard   0    --  *      *       0.0.0.0/0            0.0.0.0/0
       1       60 DROP       17   --  *      *       0.0.0.0/0            0.0.0.0/0            udp dpt:53

Chain nl_guard (1 references)
    pkts      bytes target     prot opt in     out     source               destination
       3      180 DROP       0    --  *      *       0.0.0.0/0            0.0.0.0/0
`;
    expect(parseFilterCounters(text, 1, 'nl_guard')).toEqual([
      { instance: 1, chain: 'INPUT', rule: -1, packets: 4, bytes: 240 },
      { instance: 1, chain: 'INPUT', rule: 0, packets: 7, bytes: 420 },
      { instance: 1, chain: 'OUTPUT', rule: -1, packets: 9, bytes: 500 },
      { instance: 1, chain: 'OUTPUT', rule: 0, packets: 1, bytes: 60 },
    ]);
    // Without a guard chain to leave out, every line is a rule (the nat table's parse).
    expect(parseIptablesCounters(text, 1)).toHaveLength(6);
  });
  it('parses the agent statistics (per-CPU hex columns summed, recent lists hit)', () => {
    const st = parseAgentStats(
      '#stat\nentries  drop insert_failed\n00000002  00000001 00000000\n00000002  00000002 00000003\n#recent nl_ct_new 1\n#recent nl_local 0\n',
    );
    expect(st.ct.drop).toBe(3);
    expect(st.ct.insert_failed).toBe(3);
    expect([...st.recent]).toEqual(['nl_ct_new']);
  });
});

const hasPerl = spawnSync('perl', ['-v']).status === 0;
describe.runIf(hasPerl)('namespace agent script', () => {
  it('compiles (perl -c)', () => {
    const r = spawnSync('perl', ['-c', '-e', AGENT_SCRIPT], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/syntax OK/);
    expect(r.status).toBe(0);
  });
  it('rejects a bad setup argument and an unknown mode', () => {
    const r = spawnSync('perl', ['-e', AGENT_SCRIPT, 'setup', 'sysctl:net/../../../etc/x=1'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad setup argument/);
    expect(spawnSync('perl', ['-e', AGENT_SCRIPT, 'bogus']).status).toBe(1);
  });
});
