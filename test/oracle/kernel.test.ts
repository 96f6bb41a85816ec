// The kernel oracle on the real kernel: the built-in scenario in network namespaces. Needs root
// and iproute2/iptables/conntrack/perl; skipped with the reason otherwise (CI runs it as root).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOpenScenario } from '../../src/scenario/index.ts';
import {
  checkKernelPrerequisites,
  cleanupLeftovers,
  createKernelEngine,
  listNatlabNetns,
  runKernel,
  type KernelEngine,
} from '../../src/oracle/index.ts';
import { run } from '../../src/oracle/exec.ts';
import { formatConntrackLine } from '../../src/spec/conntrack-format.ts';
import {
  buildIcmpEcho,
  buildTcp,
  buildUdp,
  parseIpv4Addr as A,
  PacketView,
  parseIpv4,
  PARSE_OK,
  verifyIpv4Header,
  verifyL4Checksum,
  F_ACK,
  F_SYN,
  LINKTYPE_RAW,
} from '../../src/packet/index.ts';
import { encodePcap } from '../../src/pcap/index.ts';
import type { InputPacket } from '../../src/spec/engine.ts';
import type { Scenario } from '../../src/spec/scenario.ts';
import { POINT_INTERNET, instancePoint } from '../../src/spec/scenario.ts';
import {
  CT_ESTABLISHED,
  CT_INVALID,
  CT_NEW,
  DROP_IGW_NO_PUBLIC_IP,
  DROP_SRC_DST_CHECK_SRC,
  DROP_TTL_EXCEEDED,
  FATE_DELIVERED,
  FATE_DROPPED,
  DROP_NO_HOST,
  DROP_BLACKHOLE,
} from '../../src/spec/reasons.ts';

const pre = await checkKernelPrerequisites();
const SKIP = !pre.ok;
if (SKIP) console.warn(`test/oracle/kernel.test.ts skipped: ${pre.missing.join('; ')}`);

const s = loadOpenScenario();
const idx = (n: string): number => s.instances.findIndex((i) => i.name === n);
const APP = instancePoint(idx('app'));
const WEB = instancePoint(idx('web'));
const NAT = idx('nat');
const pv = new PacketView();

function parsed(b: Uint8Array): PacketView {
  expect(parseIpv4(b, 0, b.length, pv)).toBe(PARSE_OK);
  expect(verifyIpv4Header(b, pv)).toBe(true);
  expect(verifyL4Checksum(b, pv)).toBe(true);
  return pv;
}

function pkt(timeUs: number, ingress: number, frame: Uint8Array): InputPacket {
  return { timeUs, ingress, frame };
}

function clone(sc: Scenario): Scenario {
  return structuredClone(sc);
}

describe.skipIf(SKIP)('kernel engine on the built-in scenario', () => {
  let e: KernelEngine;
  beforeAll(async () => {
    e = await createKernelEngine(s, {});
  });
  afterAll(async () => {
    await e?.close();
  });

  it('UDP 10.0.1.10:40000 -> 198.51.100.7:53 leaves as 203.0.113.10:40000 and the reply comes back', async () => {
    const [out, back] = await e.process([
      pkt(
        0,
        APP,
        buildUdp({
          src: A('10.0.1.10'),
          dst: A('198.51.100.7'),
          sport: 40000,
          dport: 53,
          payload: new Uint8Array([1, 2, 3]),
        }),
      ),
      pkt(
        1000,
        POINT_INTERNET,
        buildUdp({
          src: A('198.51.100.7'),
          dst: A('203.0.113.10'),
          sport: 53,
          dport: 40000,
          payload: new Uint8Array([4]),
        }),
      ),
    ]);
    expect(out.fate).toBe(FATE_DELIVERED);
    expect(out.ct).toBe(CT_NEW);
    expect(out.outputs).toHaveLength(1);
    expect(out.outputs[0].egress).toBe(POINT_INTERNET);
    const o = parsed(out.outputs[0].frame);
    expect([o.src, o.sport, o.dst, o.dport, o.ttl]).toEqual([A('203.0.113.10'), 40000, A('198.51.100.7'), 53, 63]);
    expect(back.fate).toBe(FATE_DELIVERED);
    expect(back.ct).toBe(CT_ESTABLISHED);
    expect(back.outputs.map((x) => x.egress)).toEqual([APP]);
    const b = parsed(back.outputs[0].frame);
    expect([b.src, b.sport, b.dst, b.dport, b.ttl]).toEqual([A('198.51.100.7'), 53, A('10.0.1.10'), 40000, 63]);

    const ct = await e.conntrack();
    const udp = ct.find((c) => c.proto === 17 && c.orig.sport === 40000);
    expect(udp).toBeDefined();
    expect(udp!.instance).toBe(NAT);
    expect(udp!.reply).toEqual({ src: A('198.51.100.7'), dst: A('10.0.0.10'), sport: 53, dport: 40000 });
    expect(udp!.seenReply).toBe(true);
    expect(formatConntrackLine(udp!)).toMatch(
      /^udp +17 \d+ src=10\.0\.1\.10 dst=198\.51\.100\.7 sport=40000 dport=53 src=198\.51\.100\.7 dst=10\.0\.0\.10 sport=53 dport=40000 mark=0 use=1$/,
    );
    const post = (await e.natCounters()).find((c) => c.instance === NAT && c.chain === 'POSTROUTING' && c.rule === 0);
    expect(post?.packets).toBeGreaterThanOrEqual(1);
  });

  it('TCP handshake through the NAT instance reaches ESTABLISHED [ASSURED]', async () => {
    const c = A('10.0.1.10');
    const srv = A('198.51.100.7');
    const r = await e.process([
      pkt(2000, APP, buildTcp({ src: c, dst: srv, sport: 41000, dport: 443, seq: 1000, flags: F_SYN })),
      pkt(
        3000,
        POINT_INTERNET,
        buildTcp({
          src: srv,
          dst: A('203.0.113.10'),
          sport: 443,
          dport: 41000,
          seq: 5000,
          ack: 1001,
          flags: F_SYN | F_ACK,
        }),
      ),
      pkt(4000, APP, buildTcp({ src: c, dst: srv, sport: 41000, dport: 443, seq: 1001, ack: 5001, flags: F_ACK })),
    ]);
    expect(r.map((x) => x.fate)).toEqual([FATE_DELIVERED, FATE_DELIVERED, FATE_DELIVERED]);
    expect(r.map((x) => x.outputs[0].egress)).toEqual([POINT_INTERNET, APP, POINT_INTERNET]);
    expect(parsed(r[1].outputs[0].frame).dst).toBe(c);
    const tcp = (await e.conntrack()).find((x) => x.proto === 6 && x.orig.sport === 41000);
    expect(tcp).toMatchObject({ state: 'ESTABLISHED', assured: true, seenReply: true });
  });

  it('ping: echo out, echo reply back', async () => {
    const r = await e.process([
      pkt(5000, APP, buildIcmpEcho({ src: A('10.0.1.10'), dst: A('192.0.2.1'), id: 77, seq: 1 })),
      pkt(
        6000,
        POINT_INTERNET,
        buildIcmpEcho({ src: A('192.0.2.1'), dst: A('203.0.113.10'), id: 77, seq: 1, reply: true }),
      ),
    ]);
    expect(parsed(r[0].outputs[0].frame).src).toBe(A('203.0.113.10'));
    expect(r[1].outputs.map((x) => x.egress)).toEqual([APP]);
    expect(parsed(r[1].outputs[0].frame).dst).toBe(A('10.0.1.10'));
    const icmp = (await e.conntrack()).find((x) => x.proto === 1 && x.orig.sport === 77);
    expect(icmp?.reply.dst).toBe(A('10.0.0.10'));
  });

  it("inbound to web's Elastic IP reaches 10.0.0.20 with no NAT instance involved", async () => {
    const [r] = await e.process([
      pkt(
        7000,
        POINT_INTERNET,
        buildTcp({ src: A('198.51.100.9'), dst: A('203.0.113.20'), sport: 5555, dport: 80, flags: F_SYN }),
      ),
    ]);
    expect(r.fate).toBe(FATE_DELIVERED);
    expect(r.outputs.map((x) => x.egress)).toEqual([WEB]);
    const o = parsed(r.outputs[0].frame);
    expect([o.dst, o.dport, o.ttl]).toEqual([A('10.0.0.20'), 80, 64]);
  });

  it('unsolicited inbound to the NAT instance is delivered to its stack, whose answer does not leave', async () => {
    const [r] = await e.process([
      pkt(
        8000,
        POINT_INTERNET,
        buildTcp({ src: A('198.51.100.9'), dst: A('203.0.113.10'), sport: 5556, dport: 22, flags: F_SYN }),
      ),
    ]);
    expect(r.fate).toBe(FATE_DELIVERED);
    expect(r.ct).toBe(CT_NEW);
    expect(r.outputs.map((x) => x.egress)).toEqual([instancePoint(NAT)]);
    expect(parsed(r.outputs[0].frame).dst).toBe(A('10.0.0.10'));
  });

  it('a bad UDP checksum from inside is INVALID, forwarded un-NATed, and the IGW drops it', async () => {
    const bad = buildUdp({
      src: A('10.0.1.10'),
      dst: A('198.51.100.7'),
      sport: 40100,
      dport: 53,
      payload: new Uint8Array(4),
    });
    bad[27] ^= 0x5a;
    const [r] = await e.process([pkt(9000, APP, bad)]);
    expect(r.ct).toBe(CT_INVALID);
    expect(r.fate).toBe(FATE_DROPPED);
    expect(r.reason).toBe(DROP_IGW_NO_PUBLIC_IP);
  });

  it('TTL 1 through the NAT instance: time exceeded back to the sender (the VPC router does not count as a hop)', async () => {
    const [r] = await e.process([
      pkt(10000, APP, buildUdp({ src: A('10.0.1.10'), dst: A('198.51.100.7'), sport: 40200, dport: 53, ttl: 1 })),
    ]);
    expect(r.fate).toBe(FATE_DROPPED);
    expect(r.reason).toBe(DROP_TTL_EXCEEDED);
    expect(r.outputs.map((x) => x.egress)).toEqual([APP]);
    const o = parsed(r.outputs[0].frame);
    expect([o.src, o.icmpType]).toEqual([A('10.0.0.10'), 11]);
  });
});

describe.skipIf(SKIP)('kernel engine: VPC router drops, cleanup', () => {
  it('source/dest check, blackhole and unassigned VPC addresses are dropped with their reason', async () => {
    const sc = clone(s);
    sc.instances[idx('web')].sourceDestCheck = true;
    const priv = sc.subnets[sc.instances[idx('app')].subnet].routeTable;
    sc.routeTables[priv].routes.push({ dest: { addr: A('192.0.2.99'), len: 32 }, target: 'blackhole', instance: -1 });
    const run = await runKernel(sc, [
      pkt(0, WEB, buildUdp({ src: A('10.0.0.99'), dst: A('198.51.100.7'), sport: 1, dport: 2 })),
      pkt(1, APP, buildUdp({ src: A('10.0.1.10'), dst: A('192.0.2.99'), sport: 1, dport: 2 })),
      pkt(2, APP, buildUdp({ src: A('10.0.1.10'), dst: A('10.0.5.5'), sport: 1, dport: 2 })),
    ]);
    expect(run.results.map((r) => r.reason)).toEqual([DROP_SRC_DST_CHECK_SRC, DROP_BLACKHOLE, DROP_NO_HOST]);
    expect(run.results.every((r) => r.outputs.length === 0)).toBe(true);
    expect(run.conntrack).toEqual([]);
  });

  it('timeouts: shortened UDP timeout expires in real time on advance(); a long gap is refused', async () => {
    const sc = clone(s);
    sc.conntrack.timeouts.udp = 1;
    const e = await createKernelEngine(sc, { maxWaitMs: 3000 });
    try {
      await e.process([
        pkt(0, APP, buildUdp({ src: A('10.0.1.10'), dst: A('198.51.100.7'), sport: 40000, dport: 53 })),
      ]);
      expect((await e.conntrack()).map((c) => c.timeout)).toEqual([expect.any(Number)]);
      await e.advance(1_600_000);
      expect(e.waitedMs).toBeGreaterThan(1000);
      // Expired: lookups ignore it at once; it may linger in the list until the GC reaps it.
      const [reply] = await e.process([
        pkt(
          1_600_001,
          POINT_INTERNET,
          buildUdp({ src: A('198.51.100.7'), dst: A('203.0.113.10'), sport: 53, dport: 40000 }),
        ),
      ]);
      expect(reply.ct).toBe(CT_NEW);
      expect(reply.outputs.map((o) => o.egress)).toEqual([instancePoint(NAT)]);
      await expect(e.advance(60_000_000)).rejects.toThrow(/needs [\d.]+ s of real waiting/);
    } finally {
      await e.close();
    }
  });

  it('a nat table the kernel rejects is bad input (InputError naming the instance) and leaves nothing', async () => {
    const sc = clone(s);
    sc.instances[NAT].nat = {
      ...sc.instances[NAT].nat!,
      text: '*nat\n-A POSTROUTING -o eth0 -j NO-SUCH-TARGET\nCOMMIT\n',
    };
    const before = new Set(await listNatlabNetns());
    await expect(createKernelEngine(sc, {})).rejects.toThrow(/instance nat: iptables-restore rejected its nat table/);
    const mine = `natlab-${process.pid.toString(36)}`;
    expect((await listNatlabNetns()).filter((n) => n.startsWith(mine) && !before.has(n))).toEqual([]);
  });

  it('close() removes every namespace; a second run right after works', async () => {
    const e1 = await createKernelEngine(s, {});
    const mine = e1.netnsNames;
    const now = await listNatlabNetns();
    for (const n of mine) expect(now).toContain(n);
    await e1.close();
    const after = await listNatlabNetns();
    for (const n of mine) expect(after).not.toContain(n);
    const e2 = await createKernelEngine(s, {});
    const mine2 = e2.netnsNames;
    try {
      const [r] = await e2.process([
        pkt(0, APP, buildUdp({ src: A('10.0.1.10'), dst: A('198.51.100.7'), sport: 40000, dport: 53 })),
      ]);
      expect(r.fate).toBe(FATE_DELIVERED);
    } finally {
      await e2.close();
    }
    const end = await listNatlabNetns();
    expect([...mine, ...mine2].filter((n) => end.includes(n))).toEqual([]);
  });

  it('a child process running an engine, killed with SIGTERM, leaves no namespace behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'natlab-kernel-'));
    const input = join(dir, 'in.pcap');
    // Two packets 30 s apart: the child waits in real time, holding its namespaces.
    const frames = [
      buildUdp({ src: A('10.0.1.10'), dst: A('198.51.100.7'), sport: 40000, dport: 53 }),
      buildUdp({ src: A('10.0.1.10'), dst: A('198.51.100.7'), sport: 40000, dport: 53 }),
    ];
    writeFileSync(
      input,
      encodePcap(
        frames.map((d, i) => ({ tsSec: 1_700_000_000 + i * 30, tsNsec: 0, data: d })),
        { linkType: LINKTYPE_RAW },
      ),
    );
    const child = spawn(
      process.execPath,
      [
        'bin/natlab.mjs',
        'kernel',
        '--scenario',
        'vpc-nat-instance-open',
        '--in',
        input,
        '--out',
        join(dir, 'out'),
        '--max-wait',
        '60',
      ],
      {
        cwd: join(import.meta.dirname, '..', '..'),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const prefix = `natlab-${child.pid!.toString(36)}`;
    const exited = new Promise<{ code: number | null; signal: string | null }>((res) =>
      child.on('exit', (code, signal) => res({ code, signal })),
    );
    let seen: string[] = [];
    for (let i = 0; i < 300 && seen.length < 5; i++) {
      await new Promise((r) => setTimeout(r, 100));
      seen = (await listNatlabNetns()).filter((n) => n.startsWith(prefix));
      if (child.exitCode !== null) break;
    }
    expect(seen, `child never built its namespaces: ${stderr}`).toHaveLength(5);
    // Let it reach the real-time wait between the packets.
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGTERM');
    const ex = await exited;
    expect(ex.signal ?? ex.code).toBeTruthy();
    expect((await listNatlabNetns()).filter((n) => n.startsWith(prefix))).toEqual([]);
  });

  it('a run killed with SIGKILL leaves its namespaces; the next run removes them and says so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'natlab-kernel-'));
    const input = join(dir, 'in.pcap');
    const frames = [
      buildUdp({ src: A('10.0.1.10'), dst: A('198.51.100.7'), sport: 40001, dport: 53 }),
      buildUdp({ src: A('10.0.1.10'), dst: A('198.51.100.7'), sport: 40001, dport: 53 }),
    ];
    writeFileSync(
      input,
      encodePcap(
        frames.map((d, i) => ({ tsSec: 1_700_000_000 + i * 30, tsNsec: 0, data: d })),
        { linkType: LINKTYPE_RAW },
      ),
    );
    const child = spawn(
      process.execPath,
      [
        'bin/natlab.mjs',
        'kernel',
        '--scenario',
        'vpc-nat-instance-open',
        '--in',
        input,
        '--out',
        join(dir, 'out'),
        '--max-wait',
        '60',
      ],
      {
        cwd: join(import.meta.dirname, '..', '..'),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const prefix = `natlab-${child.pid!.toString(36)}`;
    const exited = new Promise<void>((res) => child.on('exit', () => res()));
    let seen: string[] = [];
    for (let i = 0; i < 300 && seen.length < 5; i++) {
      await new Promise((r) => setTimeout(r, 100));
      seen = (await listNatlabNetns()).filter((n) => n.startsWith(prefix));
      if (child.exitCode !== null) break;
    }
    expect(seen).toHaveLength(5);
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGKILL');
    await exited;
    // SIGKILL cannot be caught: the namespaces are still there (unless another test file's engine,
    // created in between, already removed them, which is this very feature).
    const e2 = await createKernelEngine(s, {});
    try {
      expect((await listNatlabNetns()).filter((n) => n.startsWith(prefix))).toEqual([]);
      const w = e2.warnings.find((x) => x.includes(prefix));
      const left = seen.length;
      if (w)
        expect(w).toMatch(
          new RegExp(
            `removed \\d+ namespace\\(s\\) left behind by natlab run\\(s\\) whose process \\(.*${child.pid}.*\\) is gone`,
          ),
        );
      expect(left).toBe(5);
    } finally {
      await e2.close();
    }
  });

  it('--cleanup removes namespaces of dead runs only', async () => {
    const dead = `natlab-${(4_194_305).toString(36)}dead-rt`; // above pid_max: never a live process
    const alive = `natlab-${process.pid.toString(36)}live-net`;
    await run('ip', ['netns', 'add', dead]);
    await run('ip', ['netns', 'add', alive]);
    try {
      const removed = await cleanupLeftovers();
      // (An engine created meanwhile by another test file may have removed `dead` first.)
      expect(removed).not.toContain(alive);
      const left = await listNatlabNetns();
      expect(left).not.toContain(dead);
      expect(left).toContain(alive);
    } finally {
      await run('ip', ['netns', 'del', alive], { allowFail: true });
      await run('ip', ['netns', 'del', dead], { allowFail: true });
    }
  });
});
