// The broken-scenario table: every way a scenario file can be wrong gets exit 2 from
// `natlab scenario check` (and the same message wherever a scenario is loaded), naming the file
// and where in it, on bounded, escaped output — never a stack trace, never the whole offending
// value, never raw bytes. In-process (main(), the code path the CLI runs). docs/errors.md.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runInProcess, STACK_TRACE_RE } from '../helpers/cli.ts';

const BUILTIN = readFileSync('scenarios/vpc-nat-instance.yaml', 'utf8');
const tmp = mkdtempSync(join(tmpdir(), 'natlab-broken-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The built-in with one text replaced (the replacement must apply). */
function edit(from: string, to: string): string {
  expect(BUILTIN.includes(from), from).toBe(true);
  return BUILTIN.replace(from, to);
}

const BIG = 'x'.repeat(1 << 20);

interface Case {
  name: string;
  text: () => string | Uint8Array;
  ext?: string;
  says: RegExp;
}

const CASES: Case[] = [
  // not a scenario at all
  { name: 'empty file', text: () => '', says: /expected a mapping|missing|empty/ },
  { name: 'a list', text: () => '- a\n- b\n', says: /expected a mapping/ },
  {
    name: 'a pcap',
    text: () => readFileSync('corpora/generated/dns-udp/input.pcap'),
    says: /is a capture \(pcap\/pcapng\), not a scenario file/,
  },
  {
    name: 'binary with a NUL',
    text: () => new Uint8Array([0x6e, 0x61, 0x6d, 0x65, 0x3a, 0x00, 0xff, 0xfe]),
    says: /not a text file \(a NUL byte at offset 5\)/,
  },
  {
    name: 'invalid UTF-8 and escapes',
    text: () => new Uint8Array([...Buffer.from('name: '), 0x1b, 0x5b, 0x33, 0x31, 0x6d, 0xc3, 0x28, 0x0a]),
    says: /./,
  },
  { name: 'YAML syntax', text: () => 'name: [unclosed\n', says: /YAML syntax/ },
  { name: 'JSON syntax', ext: '.json', text: () => '{"name": ', says: /JSON syntax/ },
  { name: 'JSON syntax in a 1 MB value', ext: '.json', text: () => `{"name": "${BIG}" x}`, says: /JSON syntax/ },
  { name: 'duplicate keys', text: () => edit('name: vpc-nat-instance', 'name: a\nname: b'), says: /unique|duplicate/i },
  {
    name: 'alias bomb',
    text: () =>
      'a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n',
    says: /alias|Excessive|unknown key/i,
  },
  // structure
  {
    name: 'unknown top key',
    text: () => edit('name: vpc-nat-instance', 'name: vpc-nat-instance\nsubnetz: {}'),
    says: /unknown key 'subnetz' \(did you mean 'subnets'\?\)/,
  },
  // (YAML itself refuses an implicit key over 1024 characters: that error is checked too)
  {
    name: 'unknown key of 1000 characters',
    text: () => edit('name: vpc-nat-instance', `name: vpc-nat-instance\n${'k'.repeat(1000)}: 1`),
    says: /unknown key 'k{60}… \(1000 characters\)'/,
  },
  {
    name: 'key of 1 MB',
    text: () => edit('name: vpc-nat-instance', `name: vpc-nat-instance\n${BIG}: 1`),
    says: /YAML syntax: .* at most 1024 chars/,
  },
  { name: 'missing vpc', text: () => edit('vpc:\n  cidr: 10.0.0.0/16\n', ''), says: /vpc: missing \(required\)/ },
  {
    name: 'vpc is a list',
    text: () => edit('vpc:\n  cidr: 10.0.0.0/16', 'vpc: [1, 2]'),
    says: /vpc: expected a mapping, got a list/,
  },
  {
    name: 'routeTables is a string',
    text: () => edit('routeTables:\n', 'routeTables: nope\nxrouteTables:\n'),
    says: /routeTables/,
  },
  // values
  {
    name: 'vpc cidr not an address',
    text: () => edit('cidr: 10.0.0.0/16', 'cidr: banana'),
    says: /vpc\.cidr: 'banana' is not an IPv4 address/,
  },
  {
    name: 'vpc cidr of 1 MB',
    text: () => edit('cidr: 10.0.0.0/16', `cidr: ${BIG}`),
    says: /vpc\.cidr: 'x{60}… \(1048576 characters\)' is not an IPv4 address/,
  },
  { name: 'vpc cidr host bits', text: () => edit('cidr: 10.0.0.0/16', 'cidr: 10.0.0.1/16'), says: /host bits set/ },
  { name: 'vpc prefix /0', text: () => edit('cidr: 10.0.0.0/16', 'cidr: 0.0.0.0/0'), says: /vpc\.cidr/ },
  {
    name: 'subnet outside the VPC',
    text: () => edit('public: { cidr: 10.0.0.0/24', 'public: { cidr: 10.1.0.0/24'),
    says: /subnets\.public/,
  },
  {
    name: 'overlapping subnets',
    text: () => edit('private: { cidr: 10.0.1.0/24', 'private: { cidr: 10.0.0.0/25'),
    says: /overlap/,
  },
  {
    name: 'subnet /29',
    text: () => edit('private: { cidr: 10.0.1.0/24', 'private: { cidr: 10.0.1.0/29'),
    says: /\/29 is smaller than AWS allows/,
  },
  { name: 'unknown route table', text: () => edit('routeTable: private }', 'routeTable: privat }'), says: /privat/ },
  { name: 'route target unknown', text: () => edit('target: eni:nat', 'target: eni:natt'), says: /natt/ },
  { name: 'route target nonsense', text: () => edit('target: igw }', 'target: "\\u001b[2J" }'), says: /\\x1b\[2J/ },
  {
    name: 'instance in unknown subnet',
    text: () => edit('subnet: private\n    privateIp: 10.0.1.10', 'subnet: nowhere\n    privateIp: 10.0.1.10'),
    says: /nowhere/,
  },
  {
    name: 'instance outside its subnet',
    text: () => edit('privateIp: 10.0.1.10', 'privateIp: 10.0.0.99'),
    says: /instances\.app\.privateIp/,
  },
  {
    name: 'instance on the VPC router address',
    text: () => edit('privateIp: 10.0.1.10', 'privateIp: 10.0.1.1'),
    says: /10\.0\.1\.1 is reserved by AWS/,
  },
  {
    name: 'instance on the broadcast address',
    text: () => edit('privateIp: 10.0.1.10', 'privateIp: 10.0.1.255'),
    says: /broadcast/,
  },
  {
    name: 'two instances on one address',
    text: () => edit('privateIp: 10.0.0.20', 'privateIp: 10.0.0.10'),
    says: /10\.0\.0\.10/,
  },
  {
    name: 'elastic IP reused',
    text: () => edit('elasticIp: 203.0.113.20', 'elasticIp: 203.0.113.10'),
    says: /203\.0\.113\.10/,
  },
  {
    name: 'elastic IP private',
    text: () => edit('elasticIp: 203.0.113.20', 'elasticIp: 10.0.0.77'),
    says: /elasticIp/,
  },
  {
    name: 'sourceDestCheck not a boolean',
    text: () => edit('sourceDestCheck: false', 'sourceDestCheck: maybe'),
    says: /sourceDestCheck/,
  },
  {
    name: 'unknown boot script',
    text: () => edit('bootScript: configure-pat', 'bootScript: configure-nat'),
    says: /configure-nat/,
  },
  {
    name: 'iptables: bad rule',
    text: () =>
      edit(
        '    natInstance:\n      bootScript: configure-pat\n      vpcCidrFromMetadata: true\n',
        '    iptables: |\n      *nat\n      -A POSTROUTING -j MASQUERAD\n      COMMIT\n',
      ),
    says: /MASQUERAD/,
  },
  {
    name: 'iptables: a 1 MB token',
    text: () =>
      edit(
        '    natInstance:\n      bootScript: configure-pat\n      vpcCidrFromMetadata: true\n',
        `    iptables: |\n      *nat\n      -A POSTROUTING -j ${BIG}\n      COMMIT\n`,
      ),
    says: /x{60}… \(1048576 characters\)|characters/,
  },
  {
    name: 'sysctl unknown',
    text: () =>
      edit(
        '    natInstance:\n      bootScript: configure-pat\n',
        '    sysctls: { net.ipv4.tcp_foo: 1 }\n    natInstance:\n      bootScript: configure-pat\n',
      ),
    says: /tcp_foo/,
  },
  { name: 'internet host inside the VPC', text: () => edit('- 192.0.2.0/24', '- 10.0.0.0/24'), says: /internet/ },
  { name: 'internet host not an address', text: () => edit('- 192.0.2.0/24', '- 300.1.2.3'), says: /300\.1\.2\.3/ },
  { name: 'conntrack max 0', text: () => `${BUILTIN}\nconntrack:\n  max: 0\n`, says: /conntrack\.max/ },
  { name: 'conntrack timeout negative', text: () => `${BUILTIN}\nconntrack:\n  timeouts: { udp: -5 }\n`, says: /udp/ },
  {
    name: 'conntrack timeout huge',
    text: () => `${BUILTIN}\nconntrack:\n  timeouts: { udp: 99999999999 }\n`,
    says: /udp/,
  },
  { name: 'conntrack unknown timeout', text: () => `${BUILTIN}\nconntrack:\n  timeouts: { udpp: 5 }\n`, says: /udpp/ },
  {
    name: 'subnet name with control characters',
    text: () => edit('  private: { cidr', '  "pri\\u0007vate": { cidr'),
    says: /pri\\x07vate/,
  },
];

describe('broken-scenario table: exit 2, the file and where, bounded output', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
    const file = join(tmp, `${c.name.replace(/\W+/g, '-')}${c.ext ?? '.yaml'}`);
    writeFileSync(file, c.text());
    const r = await runInProcess(['scenario', 'check', file]);
    expect(r.crash).toBeNull();
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(c.says);
    expect(r.stderr.startsWith(`natlab scenario check: ${file}`)).toBe(true);
    expect(r.stderr).not.toMatch(STACK_TRACE_RE);
    // Bounded: no line longer than the message cap, no whole 1 MB value, no raw control bytes.
    expect(r.stderr.length).toBeLessThan(24_000);
    for (const line of r.stderr.split('\n')) expect(line.length).toBeLessThan(1100);
    expect(r.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f\ufffd]/);
    // The same file given where a scenario is loaded (replay --scenario) says the same first line.
    const first = r.stderr.split('\n')[0].replace(/^natlab scenario check: /, '');
    const rr = await runInProcess([
      'replay',
      '--in',
      'corpora/generated/dns-udp/input.pcap',
      '--out',
      join(tmp, 'out'),
      '--scenario',
      file,
      '--engines',
      'model',
    ]);
    expect(rr.code).toBe(2);
    expect(rr.stderr.split('\n')[0]).toBe(`natlab replay: ${first}`);
  });
});
