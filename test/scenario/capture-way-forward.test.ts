// Captures whose hosts sit where AWS reserves an address (10.0.0.1, 192.168.0.1: the VPC router
// of every subnet natlab would build by default), or that mix inside networks no VPC can hold:
// the error names the option that gets the capture replayed, and following it works.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildCaptureScenario, unreservedLen } from '../../src/scenario/capture.ts';
import { cidrContains, formatCidr, parseIpv4Addr as ip } from '../../src/packet/addr.ts';
import { buildUdp } from '../../src/packet/build.ts';
import { encodePcap } from '../../src/pcap/writer.ts';
import { LINKTYPE_RAW } from '../../src/packet/constants.ts';
import { runInProcess } from '../helpers/cli.ts';

const RFC1918 = [
  { addr: ip('10.0.0.0'), len: 8 },
  { addr: ip('172.16.0.0'), len: 12 },
  { addr: ip('192.168.0.0'), len: 16 },
];
const tmp = mkdtempSync(join(tmpdir(), 'natlab-waypoint-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return '';
}

function capture(name: string, pairs: Array<[string, string]>): string {
  const recs = pairs.map(([s, d], i) => ({
    tsSec: 1_700_000_000,
    tsNsec: i * 1000,
    data: buildUdp({ src: ip(s), dst: ip(d), sport: 40000, dport: 53 }),
  }));
  const p = join(tmp, name);
  writeFileSync(p, encodePcap(recs, { linkType: LINKTYPE_RAW }));
  return p;
}

describe('reserved inside hosts: the way forward', () => {
  it('unreservedLen: the first prefix where AWS reserves nothing at the address', () => {
    expect(unreservedLen(ip('10.0.0.1'), 16)).toBe(6); // 8.0.0.0/6
    expect(unreservedLen(ip('192.168.0.1'), 16)).toBe(12); // 192.160.0.0/12
    expect(unreservedLen(ip('10.0.1.1'), 24)).toBe(23); // 10.0.0.0/23: +257
    expect(unreservedLen(ip('0.0.0.1'), 31)).toBeNull(); // +1 of every block
  });

  for (const [host, len] of [
    ['10.0.0.1', 6],
    ['10.0.0.2', 6],
    ['192.168.0.1', 12],
  ] as const) {
    it(`${host}: the error names --subnet-len-min ${len}, and with it the scenario builds`, () => {
      const opts = { inside: RFC1918, insideHosts: [ip(host)], outsideHosts: [ip('198.51.100.7')] };
      const msg = errorOf(() => buildCaptureScenario(opts));
      expect(msg).toMatch(new RegExp(`inside host ${host.replace(/\./g, '\\.')} is reserved by AWS`));
      expect(msg).toContain(`replay with --subnet-len-min ${len} to build a larger subnet`);
      const s = buildCaptureScenario({ ...opts, subnetLenMin: len });
      const inst = s.instances.find((i) => i.privateIp === ip(host))!;
      expect(inst).toBeDefined();
      // it sits in a widened private subnet, not on a reserved offset of it
      const sn = s.subnets.find((x) => x.name !== 'public' && cidrContains(x.cidr, ip(host)))!;
      expect(sn.cidr.len).toBe(len);
      expect(ip(host) - sn.cidr.addr).toBeGreaterThan(3);
    });
  }

  it('10/8 and 192.168/16 mixed: the error names one --inside per network, and each works', () => {
    const opts = { inside: RFC1918, insideHosts: [ip('10.0.0.10'), ip('192.168.1.10')], outsideHosts: [] };
    const msg = errorOf(() => buildCaptureScenario(opts));
    expect(msg).toMatch(/span 0\.0\.0\.0\/0/);
    expect(msg).toContain(
      'replay with one of --inside 10.0.0.0/8, --inside 192.168.0.0/16 (the other hosts become internet hosts)',
    );
  });

  it('the CLI: replay refuses with the advice, and following it the replay runs (exit 0)', async () => {
    const cap = capture('router.pcap', [
      ['10.0.0.1', '198.51.100.7'],
      ['10.0.0.1', '198.51.100.8'],
    ]);
    const out = join(tmp, 'out');
    const refused = await runInProcess([
      'replay',
      '--in',
      cap,
      '--out',
      out,
      '--engines',
      'model,core',
      '--no-progress',
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--subnet-len-min 6/);
    const ok = await runInProcess([
      'replay',
      '--in',
      cap,
      '--out',
      out,
      '--engines',
      'model,core',
      '--no-progress',
      '--subnet-len-min',
      '6',
    ]);
    expect(ok.crash).toBeNull();
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/VPC 8\.0\.0\.0\/5/);

    const mixed = capture('mixed.pcap', [
      ['10.0.0.10', '198.51.100.7'],
      ['192.168.1.10', '198.51.100.7'],
    ]);
    const r2 = await runInProcess(['replay', '--in', mixed, '--out', out, '--engines', 'model,core', '--no-progress']);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/--inside 10\.0\.0\.0\/8/);
    const ok2 = await runInProcess([
      'replay',
      '--in',
      mixed,
      '--out',
      out,
      '--engines',
      'model,core',
      '--no-progress',
      '--inside',
      '10.0.0.0/8',
    ]);
    expect(ok2.code).toBe(0);
    expect(formatCidr({ addr: ip('10.0.0.0'), len: 8 })).toBe('10.0.0.0/8');
  }, 60_000);

  it('--subnet-len-min is refused with --scenario and outside 2..28', async () => {
    const cap = capture('x.pcap', [['10.0.1.10', '198.51.100.7']]);
    const out = join(tmp, 'out2');
    expect(
      (
        await runInProcess([
          'replay',
          '--in',
          cap,
          '--out',
          out,
          '--scenario',
          'vpc-nat-instance',
          '--subnet-len-min',
          '6',
        ])
      ).stderr,
    ).toMatch(/applies to --inside/);
    expect((await runInProcess(['replay', '--in', cap, '--out', out, '--subnet-len-min', '1'])).stderr).toMatch(
      /--subnet-len-min: 1 is outside 2\.\.28/,
    );
  });
});
