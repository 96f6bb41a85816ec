import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenario, parseScenario } from '../../src/scenario/load.ts';
import { ScenarioError } from '../../src/scenario/error-list.ts';
import { baseObject, errorOf, expectFirstError, ip, loadError, parseObject } from './helpers.ts';

describe('scenario validation', () => {
  it('accepts the base fixture and adds the implicit local route', () => {
    const s = parseObject(baseObject());
    expect(s.routeTables[0].routes[0]).toEqual({
      dest: { addr: ip('10.0.0.0'), len: 16 },
      target: 'local',
      instance: -1,
    });
    expect(s.routeTables[1].routes[1]).toEqual({ dest: { addr: 0, len: 0 }, target: 'eni', instance: 0 });
  });

  it('rejects unknown keys at every level, suggesting the intended one', () => {
    const o = baseObject();
    o.instances.nat.privateIP = o.instances.nat.privateIp;
    delete o.instances.nat.privateIp;
    const e = loadError(o);
    expect(e.message).toContain('test.yaml:');
    expect(e.message).toContain("instances.nat.privateIP: unknown key 'privateIP' (did you mean 'privateIp'?)");
    for (const [mut, path] of [
      [(x: any) => (x.vcp = {}), 'vcp'],
      [(x: any) => (x.vpc.cdir = '1.2.3.0/24'), 'vpc.cdir'],
      [(x: any) => (x.subnets.public.routetable = 'x'), 'subnets.public.routetable'],
      [(x: any) => (x.routeTables.public[0].via = 'x'), 'routeTables.public[0].via'],
      [(x: any) => (x.instances.nat.natInstance.script = 'x'), 'instances.nat.natInstance.script'],
      [(x: any) => (x.internet.host = []), 'internet.host'],
      [(x: any) => (x.conntrack = { maximum: 5 }), 'conntrack.maximum'],
      [(x: any) => (x.conntrack = { timeouts: { tcp_established: 5 } }), 'conntrack.timeouts.tcp_established'],
      [
        (x: any) => (x.instances.app.sysctls = { 'net.ipv4.ip_forwarding': 1 }),
        'instances.app.sysctls.net.ipv4.ip_forwarding',
      ],
    ] as const) {
      const x = baseObject();
      mut(x);
      expect(loadError(x).where).toBe(path);
    }
  });

  it('names the file line of the offending key', () => {
    const text = [
      'name: t',
      'vpc:',
      '  cidr: 10.0.0.0/16',
      'routeTables: { main: [] }',
      'subnets:',
      '  a: { cidr: 10.0.0.0/24, routeTable: main }',
      'instances:',
      '  h:',
      '    subnet: a',
      '    privateIp: 10.0.0.300',
      '',
    ].join('\n');
    const e = errorOf(() => parseScenario(text, 'f.yaml'));
    expect(e.message.split('\n')[0]).toBe(
      "f.yaml:10: instances.h.privateIp: '10.0.0.300' is not an IPv4 address (dotted quad expected)",
    );
  });

  it('reports YAML and JSON syntax errors with a line', () => {
    expect(errorOf(() => parseScenario('vpc: [\n', 'bad.yaml')).message).toMatch(/^bad\.yaml:\d+: YAML syntax/);
    expect(errorOf(() => parseScenario('a: 1\na: 2\n', 'dup.yaml')).message).toMatch(
      /^dup\.yaml:\d+: YAML syntax.*[Uu]nique/,
    );
    expect(errorOf(() => parseScenario('{"vpc": }', 'bad.json')).message).toMatch(/^bad\.json: JSON syntax/);
    expect(errorOf(() => parseScenario('', 'empty.yaml')).message).toContain('empty');
  });

  it('loads JSON files and names unreadable ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'natlab-scn-'));
    const f = join(dir, 's.json');
    writeFileSync(f, JSON.stringify(baseObject()));
    expect(loadScenario(f).instances.map((i) => i.name)).toEqual(['nat', 'app']);
    expect(errorOf(() => loadScenario(join(dir, 'nope.yaml'))).message).toContain('no such file');
  });

  it('rejects bad addresses and CIDRs', () => {
    const o = baseObject();
    o.vpc.cidr = '10.0.0/16';
    expectFirstError(o, 'vpc.cidr', "'10.0.0' is not an IPv4 address");
    const o2 = baseObject();
    o2.subnets.public.cidr = '10.0.0.0/33';
    expectFirstError(o2, 'subnets.public.cidr', '/33');
    const o3 = baseObject();
    o3.instances.app.privateIp = 'app.example.com';
    expectFirstError(o3, 'instances.app.privateIp', 'not an IPv4 address');
    const o4 = baseObject();
    o4.instances.app.privateIp = 167772426;
    expectFirstError(o4, 'instances.app.privateIp', 'expected a string');
    const o5 = baseObject();
    o5.vpc.cidr = '10.0.0.0';
    expectFirstError(o5, 'vpc.cidr', 'no prefix length');
  });

  it('rejects host bits set in a CIDR', () => {
    const o = baseObject();
    o.subnets.private.cidr = '10.0.1.5/24';
    expectFirstError(o, 'subnets.private.cidr', 'host bits set', '10.0.1.0/24');
    const o2 = baseObject();
    o2.vpc.cidr = '10.0.0.1/16';
    expectFirstError(o2, 'vpc.cidr', 'host bits set');
  });

  it('rejects overlapping subnets and subnets outside the VPC', () => {
    const o = baseObject();
    o.subnets.private.cidr = '10.0.0.128/25';
    expectFirstError(o, 'subnets.private.cidr', 'overlaps subnet public (10.0.0.0/24)');
    const o2 = baseObject();
    o2.subnets.private.cidr = '10.1.1.0/24';
    expectFirstError(o2, 'subnets.private.cidr', 'outside the VPC CIDR 10.0.0.0/16');
    const o3 = baseObject();
    o3.subnets.private.cidr = '10.0.1.0/29';
    expectFirstError(o3, 'subnets.private.cidr', '/28');
  });

  it('rejects references to route tables, subnets and instances that do not exist', () => {
    const o = baseObject();
    o.routeTables.private[0].target = 'eni:nosuch';
    expectFirstError(o, 'routeTables.private[0].target', "'eni:nosuch': instance 'nosuch' does not exist");
    const o2 = baseObject();
    o2.subnets.private.routeTable = 'privat';
    expectFirstError(o2, 'subnets.private.routeTable', "route table 'privat' does not exist (did you mean 'private'?)");
    const o3 = baseObject();
    o3.instances.app.subnet = 'nosuch';
    expectFirstError(o3, 'instances.app.subnet', "subnet 'nosuch' does not exist");
    const o4 = baseObject();
    o4.routeTables.public[0].target = 'internet-gateway';
    expectFirstError(o4, 'routeTables.public[0].target', "unknown route target 'internet-gateway'");
  });

  it('enforces the local route of the VPC CIDR', () => {
    const o = baseObject();
    o.routeTables.public.push({ dest: '10.0.0.0/16', target: 'igw' });
    expectFirstError(o, 'routeTables.public[1].target', 'always routes to local');
    const o2 = baseObject();
    o2.routeTables.public.push({ dest: '10.0.2.0/24', target: 'local' });
    expectFirstError(o2, 'routeTables.public[1].target', 'only valid for the VPC CIDR');
    const o3 = baseObject();
    o3.routeTables.public.push({ dest: '0.0.0.0/0', target: 'blackhole' });
    expectFirstError(o3, 'routeTables.public[1].dest', 'duplicate destination 0.0.0.0/0');
    const o4 = baseObject();
    o4.routeTables.public.unshift({ dest: '10.0.0.0/16', target: 'local' });
    o4.routeTables.public.push({ dest: '192.0.2.0/24', target: 'blackhole' });
    const rt = parseObject(o4).routeTables[0].routes;
    expect(rt.map((r) => r.target)).toEqual(['local', 'igw', 'blackhole']);
  });

  it('rejects instance addresses outside their subnet, network/broadcast and AWS-reserved', () => {
    const cases: Array<[string, string]> = [
      ['10.0.2.10', 'outside subnet private (10.0.1.0/24)'],
      ['10.0.1.0', 'network address'],
      ['10.0.1.255', 'broadcast address'],
      ['10.0.1.1', 'reserved by AWS'],
      ['10.0.1.2', 'reserved by AWS'],
      ['10.0.1.3', 'reserved by AWS'],
      ['127.0.0.1', 'loopback'],
      ['224.0.0.1', 'multicast'],
    ];
    for (const [addr, frag] of cases) {
      const o = baseObject();
      o.instances.app.privateIp = addr;
      expectFirstError(o, 'instances.app.privateIp', addr, frag);
    }
    const ok = baseObject();
    ok.instances.app.privateIp = '10.0.1.4';
    expect(parseObject(ok).instances[1].privateIp).toBe(ip('10.0.1.4'));
  });

  it('rejects duplicate private and Elastic IPs, Elastic IPs in the VPC or among internet hosts', () => {
    const o = baseObject();
    o.instances.web = { subnet: 'public', privateIp: '10.0.0.10' };
    expectFirstError(o, 'instances.web.privateIp', 'already the private IP of instance nat');
    const o2 = baseObject();
    o2.instances.web = { subnet: 'public', privateIp: '10.0.0.20', elasticIp: '203.0.113.10' };
    expectFirstError(o2, 'instances.web.elasticIp', 'already the Elastic IP of instance nat');
    const o3 = baseObject();
    o3.instances.nat.elasticIp = '10.0.5.5';
    expectFirstError(o3, 'instances.nat.elasticIp', 'inside the VPC CIDR 10.0.0.0/16');
    const o4 = baseObject();
    o4.instances.nat.elasticIp = '198.51.100.9';
    expectFirstError(o4, 'instances.nat.elasticIp', 'internet.hosts[0]');
  });

  it('rejects internet hosts overlapping the VPC or each other', () => {
    const o = baseObject();
    o.internet.hosts = ['198.51.100.0/24', '10.0.0.0/8'];
    expectFirstError(o, 'internet.hosts[1]', 'overlaps the VPC CIDR');
    const o2 = baseObject();
    o2.internet.hosts = ['198.51.100.0/24', '198.51.100.7'];
    expectFirstError(o2, 'internet.hosts[1]', 'overlaps internet.hosts[0]');
    const o2b = baseObject();
    o2b.internet.hosts = ['192.0.2.0/24', '198.51.100.7', '198.51.100.0/24'];
    expectFirstError(o2b, 'internet.hosts[2]', '198.51.100.0/24 overlaps internet.hosts[1] (198.51.100.7/32)');
    const o3 = baseObject();
    o3.internet.hosts = ['0.0.0.0/0'];
    expectFirstError(o3, 'internet.hosts[0]', 'overlaps');
    const o4 = baseObject();
    o4.internet.hosts = ['192.0.2.7'];
    expect(parseObject(o4).internetHosts).toEqual([{ addr: ip('192.0.2.7'), len: 32 }]);
  });

  it('validates conntrack settings and applies them over the Linux defaults', () => {
    const o = baseObject();
    o.conntrack = { max: 0 };
    expectFirstError(o, 'conntrack.max', 'out of range');
    const o2 = baseObject();
    o2.conntrack = { timeouts: { udp: -1 } };
    expectFirstError(o2, 'conntrack.timeouts.udp', 'out of range');
    const o3 = baseObject();
    o3.conntrack = { timeouts: { icmp: 1.5 } };
    expectFirstError(o3, 'conntrack.timeouts.icmp', 'integer');
    const o4 = baseObject();
    o4.conntrack = { tcpLoose: 'yes' };
    expectFirstError(o4, 'conntrack.tcpLoose', 'true or false');
    const o5 = baseObject();
    o5.conntrack = { max: 1000, tcpLoose: false, checksum: 0, timeouts: { udp: 60 } };
    const ct = parseObject(o5).conntrack;
    expect(ct).toMatchObject({ max: 1000, tcpLoose: false, checksum: false });
    expect(ct.timeouts.udp).toBe(60);
    expect(ct.timeouts.udpStream).toBe(120);
    expect(ct.tcpIgnoreInvalidRst).toBeUndefined();
    const o6 = baseObject();
    o6.conntrack = { tcpIgnoreInvalidRst: 'yes' };
    expectFirstError(o6, 'conntrack.tcpIgnoreInvalidRst', 'true or false');
    const o7 = baseObject();
    o7.conntrack = { tcpIgnoreInvalidRst: true };
    expect(parseObject(o7).conntrack.tcpIgnoreInvalidRst).toBe(true);
    // Issue 15 K4: nf_conntrack_tcp_be_liberal and nf_conntrack_tcp_max_retrans (a u8).
    expect(ct.tcpBeLiberal).toBeUndefined();
    expect(ct.tcpMaxRetrans).toBeUndefined();
    const o8 = baseObject();
    o8.conntrack = { tcpBeLiberal: 'yes' };
    expectFirstError(o8, 'conntrack.tcpBeLiberal', 'true or false');
    for (const bad of [256, -1]) {
      const o9 = baseObject();
      o9.conntrack = { tcpMaxRetrans: bad };
      expectFirstError(o9, 'conntrack.tcpMaxRetrans', 'out of range');
    }
    const o10 = baseObject();
    o10.conntrack = { tcpMaxRetrans: 2.5 };
    expectFirstError(o10, 'conntrack.tcpMaxRetrans', 'integer');
    const o11 = baseObject();
    o11.conntrack = { tcpBeLiberal: true, tcpMaxRetrans: 0 };
    expect(parseObject(o11).conntrack).toMatchObject({ tcpBeLiberal: true, tcpMaxRetrans: 0 });
  });

  it('rejects an unparsable iptables rule with its line number in the file', () => {
    const text = [
      'vpc: { cidr: 10.0.0.0/16 }', // 1
      'routeTables: { main: [] }', // 2
      'subnets: { a: { cidr: 10.0.0.0/24, routeTable: main } }', // 3
      'instances:', // 4
      '  nat:', // 5
      '    subnet: a', // 6
      '    privateIp: 10.0.0.10', // 7
      '    iptables: |', // 8
      '      *nat', // 9
      '      :POSTROUTING ACCEPT [0:0]', // 10
      '      -A POSTROUTING -o eth0 --dprt 80 -j MASQUERADE', // 11
      '      COMMIT', // 12
    ].join('\n');
    const e = errorOf(() => parseScenario(text, 'f.yaml'));
    expect(e.message.split('\n')[0]).toBe("f.yaml:11: instances.nat.iptables line 3: unknown option '--dprt'");
  });

  it('handles sysctls, natInstance without metadata and their conflicts', () => {
    const o = baseObject();
    o.instances.nat.natInstance.vpcCidrFromMetadata = false;
    const nat = parseObject(o).instances[0];
    expect(nat.nat!.chains.POSTROUTING[0].text).toBe('-A POSTROUTING -o eth0 -j MASQUERADE');
    expect(nat.nat!.chains.POSTROUTING[0].src).toBeNull();
    const o2 = baseObject();
    o2.instances.nat.iptables = '*nat\nCOMMIT\n';
    expectFirstError(o2, 'instances.nat.iptables', 'not both');
    const o3 = baseObject();
    o3.instances.nat.natInstance.bootScript = 'configure-nat';
    expectFirstError(o3, 'instances.nat.natInstance.bootScript', "unknown boot script 'configure-nat'");
    const o4 = baseObject();
    o4.instances.nat.sysctls = { 'net.ipv4.conf.all.send_redirects': 0 };
    expect(parseObject(o4).instances[0].sysctls).toEqual({
      ipForward: true,
      sendRedirectsAll: false,
      sendRedirectsEth0: false,
      icmpRatelimit: 1000,
      icmpRatemask: 0x1818,
      icmpMsgsPerSec: 1000,
      icmpMsgsBurst: 50,
    });
    const o5 = baseObject();
    o5.instances.app.sysctls = { 'net.ipv4.ip_forward': 2 };
    expectFirstError(o5, 'instances.app.sysctls.net.ipv4.ip_forward', 'true or false');
    // The ICMP rate-limit sysctls (issue 15 K2): integers in range.
    const o6 = baseObject();
    o6.instances.nat.sysctls = {
      'net.ipv4.icmp_ratelimit': 250,
      'net.ipv4.icmp_ratemask': 0x8,
      'net.ipv4.icmp_msgs_per_sec': 10,
      'net.ipv4.icmp_msgs_burst': 0,
    };
    expect(parseObject(o6).instances[0].sysctls).toMatchObject({
      icmpRatelimit: 250,
      icmpRatemask: 8,
      icmpMsgsPerSec: 10,
      icmpMsgsBurst: 0,
    });
    const o7 = baseObject();
    o7.instances.nat.sysctls = { 'net.ipv4.icmp_ratelimit': -1 };
    expectFirstError(o7, 'instances.nat.sysctls.net.ipv4.icmp_ratelimit', 'out of range 0..2147483');
    const o8 = baseObject();
    o8.instances.nat.sysctls = { 'net.ipv4.icmp_msgs_burst': 1.5 };
    expectFirstError(o8, 'instances.nat.sysctls.net.ipv4.icmp_msgs_burst', 'expected an integer');
  });

  it('explicit sysctls + iptables equal the configure-pat boot script', () => {
    const o = baseObject();
    delete o.instances.nat.natInstance;
    o.instances.nat.sysctls = { 'net.ipv4.ip_forward': 1, 'net.ipv4.conf.eth0.send_redirects': 0 };
    o.instances.nat.iptables = '*nat\n-A POSTROUTING -o eth0 -s 10.0.0.0/16 -j MASQUERADE\nCOMMIT\n';
    expect(parseObject(o)).toEqual(parseObject(baseObject()));
  });

  it('collects several errors, the first one precise', () => {
    const o = baseObject();
    o.vpc.cidr = '10.0.0.0/16';
    o.subnets.private.cidr = '10.9.1.0/24';
    o.instances.app.privateIp = '10.0.1.1';
    o.internet.hosts = ['10.0.0.0/8'];
    const e = loadError(o);
    expect(e).toBeInstanceOf(ScenarioError);
    const items = (e as ScenarioError).items.map((i) => i.where);
    expect(items).toEqual(expect.arrayContaining(['subnets.private.cidr', 'internet.hosts[0]']));
    expect(e.message).toMatch(/more errors?/);
  });

  it('rejects bad names and types', () => {
    const o = baseObject();
    o.instances['1bad'] = { subnet: 'public', privateIp: '10.0.0.30' };
    expectFirstError(o, 'instances.1bad', "'1bad' must start with a letter");
    const o2 = baseObject();
    o2.subnets = [];
    expectFirstError(o2, 'subnets', 'expected a mapping, got a list');
    const o3 = baseObject();
    delete o3.vpc;
    expectFirstError(o3, 'vpc', 'missing (required)');
    const o4 = baseObject();
    o4.instances.nat.sourceDestCheck = 'off';
    expectFirstError(o4, 'instances.nat.sourceDestCheck', 'true or false');
  });
});
