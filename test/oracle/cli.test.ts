// `natlab kernel`: prerequisites check, exit 2 without root, a capture through the kernel.
import { describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkKernelPrerequisites, listNatlabNetns } from '../../src/oracle/index.ts';
import {
  buildIcmpEcho,
  buildUdp,
  parseIpv4Addr as A,
  LINKTYPE_RAW,
  PacketView,
  parseIpv4,
} from '../../src/packet/index.ts';
import { encodePcap, readCapture } from '../../src/pcap/index.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const pre = await checkKernelPrerequisites();
const isRoot = process.getuid?.() === 0;
const hasSetpriv = existsSync('/usr/bin/setpriv');

function natlab(
  args: string[],
  asNobody = false,
): { code: number | null; stdout: string; stderr: string; pid: number } {
  const cmd = asNobody ? '/usr/bin/setpriv' : process.execPath;
  const argv = asNobody
    ? ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, 'bin/natlab.mjs', ...args]
    : ['bin/natlab.mjs', ...args];
  const r = spawnSync(cmd, argv, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, pid: r.pid ?? 0 };
}

/** Runs `natlab ARGS` in this process, capturing what it prints. */
async function inProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const o = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((c: string | Uint8Array) => ((stdout += String(c)), true));
  const e = vi
    .spyOn(process.stderr, 'write')
    .mockImplementation((c: string | Uint8Array) => ((stderr += String(c)), true));
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

function capture(dir: string): string {
  const p = join(dir, 'in.pcap');
  const frames = [
    buildUdp({ src: A('10.0.1.10'), dst: A('198.51.100.7'), sport: 40000, dport: 53, payload: new Uint8Array(12) }),
    buildUdp({ src: A('198.51.100.7'), dst: A('203.0.113.10'), sport: 53, dport: 40000, payload: new Uint8Array(30) }),
    buildIcmpEcho({ src: A('10.0.1.10'), dst: A('198.51.100.7'), id: 9, seq: 1 }),
  ];
  writeFileSync(
    p,
    encodePcap(
      frames.map((d, i) => ({ tsSec: 1_700_000_000, tsNsec: i * 1000, data: d })),
      { linkType: LINKTYPE_RAW },
    ),
  );
  return p;
}

describe('natlab kernel (no root needed)', () => {
  it('usage errors exit 2', async () => {
    expect((await inProcess(['kernel', '--in', 'x.pcap'])).code).toBe(2);
    expect((await inProcess(['kernel', '--bogus'])).code).toBe(2);
    expect((await inProcess(['kernel', '--in', 'x', '--out', 'y', '--time', 'fast'])).code).toBe(2);
  });
  it.runIf(isRoot && hasSetpriv)('without root: --check and a run exit 2 naming what is missing', () => {
    const c = natlab(['kernel', '--check'], true);
    expect(c.code).toBe(2);
    expect(c.stdout).toMatch(/MISSING root +not root/);
    const dir = mkdtempSync(join(tmpdir(), 'natlab-kcli-'));
    const r = natlab(['kernel', '--in', capture(dir), '--out', join(dir, 'out')], true);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/root: not root/);
  });
});

describe.skipIf(!pre.ok)('natlab kernel (root)', () => {
  it('--check passes and names the iptables backend', async () => {
    const r = await inProcess(['kernel', '--check']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/iptables backend: (nf_tables|legacy)/);
  });
  it('a missing capture is bad input (exit 2) and builds nothing', async () => {
    const before = new Set(await listNatlabNetns());
    const r = await inProcess(['kernel', '--in', '/nonexistent/x.pcap', '--out', '/tmp/natlab-never']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nonexistent\/x\.pcap/);
    // Namespaces of this process (this worker runs no other engine meanwhile).
    const mine = `natlab-${process.pid.toString(36)}`;
    expect((await listNatlabNetns()).filter((n) => n.startsWith(mine) && !before.has(n))).toEqual([]);
  });
  it('a bad --out (under a file, on /proc) is exit 2 before any namespace is built', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'natlab-kcli-'));
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    const mine = `natlab-${process.pid.toString(36)}`;
    const before = new Set(await listNatlabNetns());
    for (const out of [join(file, 'out'), file, '/proc/natlab-x']) {
      const r = await inProcess(['kernel', '--in', capture(dir), '--out', out]);
      expect(r.code, out).toBe(2);
      expect(r.stderr).toContain(`--out ${out}`);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect((await listNatlabNetns()).filter((n) => n.startsWith(mine) && !before.has(n))).toEqual([]);
  });
  it('runs a capture: one pcap per egress point, conntrack.txt, iptables.txt, results.json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'natlab-kcli-'));
    const out = join(dir, 'out');
    // The capture is UDP DNS: the unfiltered twin of the built-in (whose NATSG group drops it).
    const r = await inProcess([
      'kernel',
      '--scenario',
      'vpc-nat-instance-open',
      '--in',
      capture(dir),
      '--out',
      out,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ records: 3, fed: 3, delivered: 3, dropped: 0 });
    const pv = new PacketView();
    const internet = [];
    for await (const rec of readCapture(join(out, 'internet.pcap'))) {
      parseIpv4(rec.data, 0, rec.data.length, pv);
      internet.push([pv.src, pv.dst, pv.proto]);
    }
    expect(internet).toEqual([
      [A('203.0.113.10'), A('198.51.100.7'), 17],
      [A('203.0.113.10'), A('198.51.100.7'), 1],
    ]);
    const app = [];
    for await (const rec of readCapture(join(out, 'app.pcap'))) app.push(rec.data.length);
    expect(app).toEqual([20 + 8 + 30]);
    expect(readFileSync(join(out, 'conntrack.txt'), 'utf8')).toMatch(
      /udp +17 \d+ src=10\.0\.1\.10 dst=198\.51\.100\.7 sport=40000 dport=53 src=198\.51\.100\.7 dst=10\.0\.0\.10 sport=53 dport=40000/,
    );
    expect(readFileSync(join(out, 'iptables.txt'), 'utf8')).toMatch(/^ +2 +\d+ MASQUERADE/m);
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(res.packets.map((p: { ct: string }) => p.ct)).toEqual(['NEW', 'ESTABLISHED', 'NEW']);
    expect(summary.privateAddressedFromInternet).toBe(0);
  });

  it('a one-sided capture: the far side addressed to the private host is dropped at the IGW and the note points to replay', async () => {
    // Issue 20: `natlab kernel` feeds frames as captured, so a reply addressed to 10.0.1.10 (as
    // tcpdump on the app server shows it) has no IGW mapping; it says so and names the command
    // that re-addresses such frames.
    const dir = mkdtempSync(join(tmpdir(), 'natlab-kcli-'));
    const p = join(dir, 'one-sided.pcap');
    const frames = [
      buildUdp({ src: A('10.0.1.10'), dst: A('198.51.100.7'), sport: 40001, dport: 53, payload: new Uint8Array(12) }),
      buildUdp({ src: A('198.51.100.7'), dst: A('10.0.1.10'), sport: 53, dport: 40001, payload: new Uint8Array(30) }),
    ];
    writeFileSync(
      p,
      encodePcap(
        frames.map((d, i) => ({ tsSec: 1_700_000_000, tsNsec: i * 1000, data: d })),
        { linkType: LINKTYPE_RAW },
      ),
    );
    const r = await inProcess(['kernel', '--in', p, '--out', join(dir, 'out')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/note: 1 frame\(s\) from the internet were addressed to private VPC addresses/);
    expect(r.stdout).toContain(`natlab replay --engines kernel --in ${p}`);
  });
});
