// `natlab trace`: packet specs, ingress choice, natural replies, and the command's output.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { command } from '../../src/cli/cmd-trace.ts';
import { UsageError } from '../../src/cli/args.ts';
import { InputError } from '../../src/spec/errors.ts';
import { describePacket, F_ACK, F_SYN } from '../../src/packet/index.ts';
import { POINT_INTERNET } from '../../src/spec/scenario.ts';
import { ingressFor, naturalReply, parsePacketSpec } from '../../src/model/trace.ts';
import { A, point, pv, scenario, tcp } from './helpers.ts';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi
    .spyOn(process.stderr, 'write')
    .mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    try {
      return { code: await command.run(argv), out, err };
    } catch (x) {
      if (x instanceof UsageError || x instanceof InputError) return { code: 2, out, err: err + x.message };
      throw x;
    }
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('packet specs', () => {
  it('parses tcp, udp and icmp with options', () => {
    expect(describePacket(parsePacketSpec('tcp 10.0.1.10:40000 > 198.51.100.7:443 S').frame)).toBe(
      'tcp 10.0.1.10:40000 > 198.51.100.7:443 S ttl=64',
    );
    const sa = parsePacketSpec('tcp 1.2.3.4:1 > 5.6.7.8:2 SA seq 7 ack 9 ttl 5 at 1500');
    const v = pv(sa.frame);
    expect([v.tcpFlags, v.tcpSeq, v.tcpAck, v.ttl, sa.atMs]).toEqual([F_SYN | F_ACK, 7, 9, 5, 1500]);
    expect(describePacket(parsePacketSpec('udp 10.0.1.10:5000 > 198.51.100.53:53 len 12').frame)).toBe(
      'udp 10.0.1.10:5000 > 198.51.100.53:53 len=12 ttl=64',
    );
    expect(describePacket(parsePacketSpec('icmp 10.0.1.10 > 192.0.2.1 echo id 7 seq 3').frame)).toBe(
      'icmp 10.0.1.10 > 192.0.2.1 echo id=7 seq=3 ttl=64',
    );
    expect(describePacket(parsePacketSpec('tcp 1.2.3.4:1 > 5.6.7.8:2 FA').frame)).toBe(
      'tcp 1.2.3.4:1 > 5.6.7.8:2 F. ttl=64',
    );
  });

  it('rejects bad specs with a message naming the spec and the problem', () => {
    for (const [spec, msg] of [
      ['sctp 1.2.3.4:1 > 5.6.7.8:2', 'expected tcp, udp or icmp'],
      ['tcp 1.2.3.4:1 5.6.7.8:2 S', "expected 'SRC > DST'"],
      ['tcp 1.2.3.4:1 > 5.6.7.8:2', 'expected TCP flags'],
      ['tcp 1.2.3.4:1 > 5.6.7.8:2 SX', 'expected TCP flags'],
      ['udp 1.2.3.4 > 5.6.7.8:2', 'is not ADDRESS:PORT'],
      ['udp 1.2.3.400:1 > 5.6.7.8:2', 'is not an IPv4 address'],
      ['udp 1.2.3.4:70000 > 5.6.7.8:2', 'outside 0..65535'],
      ['udp 1.2.3.4:1 > 5.6.7.8:2 ttl', "'ttl' needs a number"],
      ['udp 1.2.3.4:1 > 5.6.7.8:2 ttl 300', 'outside 0..255'],
      ['udp 1.2.3.4:1 > 5.6.7.8:2 flags 3', "unknown option 'flags'"],
      ['icmp 1.2.3.4 > 5.6.7.8 ping', "expected 'echo' or 'echo-reply'"],
    ]) {
      expect(() => parsePacketSpec(spec), spec).toThrow(InputError);
      expect(() => parsePacketSpec(spec), spec).toThrow(msg);
      expect(() => parsePacketSpec(spec), spec).toThrow(spec);
    }
  });

  it('ingress: the instance owning the source, else the internet; an unknown VPC address is an error', () => {
    const s = scenario();
    expect(ingressFor(s, A('10.0.1.10'))).toBe(point(s, 'app'));
    expect(ingressFor(s, A('198.51.100.7'))).toBe(POINT_INTERNET);
    expect(ingressFor(s, A('8.8.8.8'))).toBe(POINT_INTERNET);
    expect(() => ingressFor(s, A('10.0.9.9'))).toThrow(/10\.0\.9\.9/);
  });

  it('natural replies: SYN → SYN/ACK acking it, UDP back, echo → echo reply; others none', () => {
    const syn = tcp('203.0.113.10:40000', '198.51.100.7:443', F_SYN, { seq: 41 });
    const r = pv(naturalReply(syn)!);
    expect([r.src, r.dst, r.sport, r.dport, r.tcpFlags, r.tcpAck]).toEqual([
      A('198.51.100.7'),
      A('203.0.113.10'),
      443,
      40000,
      F_SYN | F_ACK,
      42,
    ]);
    expect(naturalReply(tcp('1.1.1.1:1', '2.2.2.2:2', F_ACK))).toBeNull();
    expect(describePacket(naturalReply(parsePacketSpec('udp 1.1.1.1:5 > 2.2.2.2:53 len 3').frame)!)).toBe(
      'udp 2.2.2.2:53 > 1.1.1.1:5 len=3 ttl=64',
    );
    expect(describePacket(naturalReply(parsePacketSpec('icmp 1.1.1.1 > 2.2.2.2 echo id 9').frame)!)).toBe(
      'icmp 2.2.2.2 > 1.1.1.1 echo-reply id=9 seq=1 ttl=64',
    );
  });
});

// The NAT path itself: the built-in without its NATSG group (vpc-nat-instance-open); the group's
// hops on the default scenario are the last test here.
const OPEN = ['--scenario', 'vpc-nat-instance-open'];

describe('natlab trace', () => {
  it('prints the seven steps of the NAT path and the reply path back', async () => {
    const { code, out } = await run(...OPEN, 'tcp 10.0.1.10:40000 > 198.51.100.7:443 S');
    expect(code).toBe(0);
    const steps = [...out.matchAll(/^\s+\d+\. (.*)$/gm)].map((m) => m[1]);
    expect(steps.slice(0, 7)).toEqual([
      'instance app → ENI',
      'VPC router (rtb private)',
      'NAT instance nat: conntrack NEW',
      'MASQUERADE',
      'VPC router (rtb public)',
      'IGW static NAT',
      'internet',
    ]);
    expect(out).toContain('source 10.0.1.10:40000→10.0.0.10:40000');
    expect(out).toContain('10.0.0.10→203.0.113.10');
    expect(out).toContain('=> delivered to internet (ct NEW)');
    expect(out).toContain('reply: tcp 198.51.100.7:443 > 203.0.113.10:40000 S. ttl=64  (from internet');
    expect(out).toContain('=> delivered to app (ct ESTABLISHED)');
  });

  it('shows the hop and reason of a drop', async () => {
    const { code, out } = await run(...OPEN, '--no-reply', 'udp 10.0.1.10:5000 > 198.51.100.53:53 ttl 1');
    expect(code).toBe(0);
    expect(out).toContain("=> DROPPED at 'NAT instance nat: forward': ttl-exceeded (ct NEW)");
    expect(out).toContain(
      '=> also sent to app: icmp 10.0.0.10 > 10.0.1.10 time-exceeded ttl [udp 10.0.1.10:5000 > 198.51.100.53:53] ttl=64',
    );
  });

  it('several packets share one engine; --conntrack and --nat-table print the tables', async () => {
    const { code, out } = await run(
      ...OPEN,
      '--conntrack',
      '--nat-table',
      '--no-reply',
      'udp 10.0.1.10:5000 > 198.51.100.53:53',
      'udp 10.0.1.10:5000 > 198.51.100.53:53 at 10000',
    );
    expect(code).toBe(0);
    expect(out).toContain('conntrack -L on nat (t=10000 ms):');
    expect(out).toContain(
      'udp      17 30 src=10.0.1.10 dst=198.51.100.53 sport=5000 dport=53 [UNREPLIED] src=198.51.100.53 dst=10.0.0.10 sport=53 dport=5000 mark=0 use=1',
    );
    expect(out).toContain('conntrack v1.4.8 (conntrack-tools): 1 flow entries have been shown.');
    expect(out).toContain(
      '    1    28 MASQUERADE  all  --  *      eth0    10.0.0.0/16          0.0.0.0/0           \n',
    );
  });

  it('--json gives hops with bytes, the verdict and the reply', async () => {
    const { code, out } = await run(...OPEN, '--json', 'icmp 10.0.1.10 > 192.0.2.1 echo id 7');
    expect(code).toBe(0);
    const doc = JSON.parse(out);
    expect(doc.packets).toHaveLength(1);
    const p = doc.packets[0];
    expect(p.fate).toBe('delivered');
    expect(p.ct).toBe('NEW');
    expect(p.hops).toHaveLength(7);
    expect(p.hops[3]).toMatchObject({ name: 'MASQUERADE', checksumsOk: true });
    expect(p.hops[6].hex).toMatch(/^45/);
    expect(p.reply.fate).toBe('delivered');
    expect(p.reply.outputs[0].egress).toBe('app');
  });

  it('exit 2 for a bad spec, an unknown source, times going back, no packet', async () => {
    expect((await run('tcp 10.0.1.10:1 > 1.2.3.4:2 Q')).code).toBe(2);
    const unknown = await run('tcp 10.0.9.9:1 > 1.2.3.4:2 S');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('10.0.9.9');
    expect((await run('udp 10.0.1.10:1 > 1.2.3.4:2 at 5000', 'udp 10.0.1.10:1 > 1.2.3.4:2 at 10')).code).toBe(2);
    expect((await run()).code).toBe(2);
    expect((await run('--scenario', '/nonexistent.yaml', 'udp 10.0.1.10:1 > 1.2.3.4:2')).code).toBe(2);
  });

  it("the default (the built-in): the NATSG group's hops name their rules; DNS is dropped there (the demo's trace step)", async () => {
    const { code, out } = await run(
      'tcp 10.0.1.10:40000 > 198.51.100.7:443 S',
      'udp 10.0.1.10:40001 > 198.51.100.7:53',
    );
    expect(code).toBe(0);
    expect(out).toMatch(/^scenario: vpc-nat-instance \(/);
    const steps = [...out.matchAll(/^\s+\d+\. (.*)$/gm)].map((m) => m[1]);
    expect(steps.slice(0, 9)).toEqual([
      'instance app → ENI',
      'VPC router (rtb private)',
      'security groups nat (inbound)',
      'NAT instance nat: conntrack NEW',
      'MASQUERADE',
      'security groups nat (outbound)',
      'VPC router (rtb public)',
      'IGW static NAT',
      'internet',
    ]);
    expect(out).toContain('rule natsg inbound[1] tcp 443 10.0.1.0/24; tracked (new flow');
    expect(out).toContain('rule natsg outbound[1] tcp 443 0.0.0.0/0; tracked (new flow');
    expect(out).toContain('=> delivered to app (ct ESTABLISHED)');
    expect(out).toContain('packet 2: udp 10.0.1.10:40001 > 198.51.100.7:53  (from app, t=0 ms)');
    expect(out).toContain("=> DROPPED at 'security groups nat (inbound)': sg-deny (ct none)");
  });
});
