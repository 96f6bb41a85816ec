// Benchmark workload generators (docs/benchmarks.md "Workloads"), named after the field's practice
// (fd.io CSIT NAT44 tests, RFC 2544 / RFC 9693 benchmarking of stateful NATs):
//   - established flows: S sessions set up first (3 packets each: out, reply, out — so UDP is
//     ASSURED and a TCP handshake completes), then a stream of 64-byte frames of those sessions;
//   - session setup: every frame opens a new flow (connections per second);
//   - mixed traffic from a TrafficProfile (src/traffic/profile.ts).
// Frames are written straight into caller-owned columns (a FrameBatch, docs/frame-batch.md, has this shape), with
// correct IPv4 and L4 checksums and zero payload, so a run can pre-load millions of frames without
// an object per packet. Flows are deterministic functions of a flow id (FlowSpace) and a seed.
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP, F_ACK, F_SYN } from '../packet/constants.ts';
import { formatIpv4 } from '../packet/addr.ts';
import { wr16, wr32 } from '../packet/bytes.ts';
import type { Scenario, Instance } from '../spec/scenario.ts';
import { POINT_INTERNET, instancePoint } from '../spec/scenario.ts';
import { InputError } from '../spec/errors.ts';
import { MIN_ICMP_LEN, MIN_TCP_LEN, MIN_UDP_LEN, type TrafficProfile, describeProfile } from './profile.ts';

/** Where generated frames go: a FrameBatch (src/spec/frame-batch.ts) satisfies this. */
export interface FrameColumns {
  arena: Uint8Array;
  off: Int32Array;
  len: Int32Array;
  ingress: Int32Array;
  /** Written as nowMs * 1000. */
  timeUs: Float64Array;
}

/** The next frame offset after a frame of `len` bytes at `off` (FrameBatch frames are 8-byte aligned). */
export function nextFrameOffset(off: number, len: number): number {
  return (off + len + 7) & ~7;
}

/** IPv4 total length of a 64-byte Ethernet frame (14-byte header + 4-byte FCS). */
export const FRAME64_IP_LEN = 46;

// ---- deterministic randomness ------------------------------------------------------------------

/** xorshift32; never 0. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed ^ 0x9e3779b9) | 0 || 0x2545f491;
  }
  u32(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x;
    return x >>> 0;
  }
  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }
  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.float() * n);
  }
}

/** A seeded Fisher–Yates permutation of 0..n-1. */
export function permutation(n: number, seed: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const r = new Rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = r.below(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** Samples ranks 0..n-1 with weight 1/(k+1)^s (s = 0: uniform). */
export class ZipfSampler {
  private readonly cdf: Float64Array;
  constructor(
    readonly n: number,
    readonly s: number,
  ) {
    this.cdf = new Float64Array(n);
    let acc = 0;
    for (let k = 0; k < n; k++) {
      acc += s === 0 ? 1 : 1 / (k + 1) ** s;
      this.cdf[k] = acc;
    }
    for (let k = 0; k < n; k++) this.cdf[k] /= acc;
  }
  sample(u: number): number {
    const c = this.cdf;
    let lo = 0;
    let hi = c.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (c[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
  /** Share of draws that land on the top `k` ranks. */
  topShare(k: number): number {
    return k <= 0 ? 0 : this.cdf[Math.min(k, this.n) - 1];
  }
}

// ---- frame writers (zero payload, correct checksums) -------------------------------------------

function fold(s: number): number {
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Writes a 20-byte IPv4 header (TTL 64, DF clear) and zeroes the rest up to totalLen. */
function writeIp(
  b: Uint8Array,
  o: number,
  proto: number,
  src: number,
  dst: number,
  totalLen: number,
  ipId: number,
): void {
  b.fill(0, o, o + totalLen);
  b[o] = 0x45;
  wr16(b, o + 2, totalLen);
  wr16(b, o + 4, ipId & 0xffff);
  b[o + 8] = 64;
  b[o + 9] = proto;
  wr32(b, o + 12, src);
  wr32(b, o + 16, dst);
  const s =
    0x4500 +
    totalLen +
    (ipId & 0xffff) +
    ((64 << 8) | proto) +
    (src >>> 16) +
    (src & 0xffff) +
    (dst >>> 16) +
    (dst & 0xffff);
  wr16(b, o + 10, ~fold(s) & 0xffff);
}

function pseudo(src: number, dst: number, proto: number, l4len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + l4len;
}

export function writeUdp(
  b: Uint8Array,
  o: number,
  src: number,
  dst: number,
  sport: number,
  dport: number,
  totalLen: number,
  ipId = 0,
): number {
  writeIp(b, o, PROTO_UDP, src, dst, totalLen, ipId);
  const u = o + 20;
  const ulen = totalLen - 20;
  wr16(b, u, sport);
  wr16(b, u + 2, dport);
  wr16(b, u + 4, ulen);
  let c = ~fold(pseudo(src, dst, PROTO_UDP, ulen) + sport + dport + ulen) & 0xffff;
  if (c === 0) c = 0xffff;
  wr16(b, u + 6, c);
  return totalLen;
}

export function writeTcp(
  b: Uint8Array,
  o: number,
  src: number,
  dst: number,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  totalLen: number,
  ipId = 0,
): number {
  writeIp(b, o, PROTO_TCP, src, dst, totalLen, ipId);
  const t = o + 20;
  const tlen = totalLen - 20;
  wr16(b, t, sport);
  wr16(b, t + 2, dport);
  wr32(b, t + 4, seq >>> 0);
  wr32(b, t + 8, ack >>> 0);
  const offFlags = (5 << 12) | flags;
  wr16(b, t + 12, offFlags);
  wr16(b, t + 14, 0xffff);
  const s =
    pseudo(src, dst, PROTO_TCP, tlen) +
    sport +
    dport +
    (seq >>> 16) +
    (seq & 0xffff) +
    (ack >>> 16) +
    (ack & 0xffff) +
    offFlags +
    0xffff;
  wr16(b, t + 16, ~fold(s) & 0xffff);
  return totalLen;
}

/** ICMP echo request (type 8) or reply (type 0). */
export function writeIcmpEcho(
  b: Uint8Array,
  o: number,
  src: number,
  dst: number,
  type: number,
  id: number,
  seq: number,
  totalLen: number,
  ipId = 0,
): number {
  writeIp(b, o, PROTO_ICMP, src, dst, totalLen, ipId);
  const m = o + 20;
  b[m] = type;
  wr16(b, m + 4, id);
  wr16(b, m + 6, seq);
  wr16(b, m + 2, ~fold((type << 8) + id + seq) & 0xffff);
  return totalLen;
}

// ---- the flow space ------------------------------------------------------------------------------

/** Source ports used by generated flows (Linux's default ephemeral range is inside it). */
export const SPORT_BASE = 1024;
export const SPORT_COUNT = 65536 - SPORT_BASE;
/** Multiplier spreading consecutive flow ids over the port range (odd, coprime with SPORT_COUNT). */
const SPORT_STRIDE = 40499;
const DPORTS = [443, 80, 53, 123, 8080, 993, 22, 25, 587, 3306, 5432, 6379, 8443, 9000, 1194, 5060];

/**
 * Flow id → 5-tuple on a scenario: an inside host behind a MASQUERADE NAT instance with an Elastic
 * IP talks to internet hosts. Consecutive ids get spread source ports (so every worker owns an
 * equal share: ports are partitioned p % W), then the next remote host, then the next port.
 */
export class FlowSpace {
  readonly inside: Instance;
  readonly insidePoint: number;
  readonly insideAddr: number;
  /** Address replies are sent to: the NAT instance's Elastic IP. */
  readonly natPublic: number;
  readonly remotes: Uint32Array;

  constructor(
    readonly scenario: Scenario,
    insideName = 'app',
  ) {
    const i = scenario.instances.findIndex((x) => x.name === insideName);
    if (i < 0)
      throw new InputError(
        `${scenario.source}: the benchmark needs an inside host named '${insideName}'`,
        scenario.source,
        'instances',
      );
    this.inside = scenario.instances[i];
    this.insidePoint = instancePoint(i);
    this.insideAddr = this.inside.privateIp;
    const nat = scenario.instances.find((x) => x.nat !== null && x.elasticIp !== null);
    if (!nat || nat.elasticIp === null)
      throw new InputError(
        `${scenario.source}: the benchmark needs a NAT instance with an Elastic IP`,
        scenario.source,
        'instances',
      );
    this.natPublic = nat.elasticIp;
    const r: number[] = [];
    for (const c of scenario.internetHosts) {
      const n = c.len >= 31 ? 2 ** (32 - c.len) : 2 ** (32 - c.len) - 2;
      const first = c.len >= 31 ? c.addr : c.addr + 1;
      for (let k = 0; k < n && r.length < 4096; k++) r.push((first + k) >>> 0);
    }
    if (r.length === 0)
      throw new InputError(`${scenario.source}: the benchmark needs internet hosts`, scenario.source, 'internetHosts');
    this.remotes = Uint32Array.from(r);
  }

  sport(id: number): number {
    return SPORT_BASE + (((id % SPORT_COUNT) * SPORT_STRIDE) % SPORT_COUNT);
  }
  remote(id: number): number {
    return this.remotes[Math.floor(id / SPORT_COUNT) % this.remotes.length];
  }
  dport(id: number): number {
    return DPORTS[Math.floor(id / SPORT_COUNT / this.remotes.length) % DPORTS.length];
  }
  /** Distinct flows per protocol before tuples repeat. */
  get capacity(): number {
    return SPORT_COUNT * this.remotes.length * DPORTS.length;
  }
  describe(): string {
    return (
      `from ${this.inside.name} ${formatIpv4(this.insideAddr)} (ports ${SPORT_BASE}..65535, spread) to ${this.remotes.length} internet hosts ` +
      `(${formatIpv4(this.remotes[0])}..), replies to the NAT's Elastic IP ${formatIpv4(this.natPublic)}`
    );
  }
}

/** Protocol of a flow in the generators. */
export const FLOW_UDP = 0;
export const FLOW_TCP = 1;
export const FLOW_ICMP = 2;

const CLIENT_ISN = 0x10000000;
const SERVER_ISN = 0x70000000;

/**
 * Writes packet `phase` of flow `id`: 0 = first outbound (UDP datagram, TCP SYN, echo request),
 * 1 = the reply (UDP, SYN-ACK, echo reply) to the NAT's public address with the preserved port,
 * 2 = outbound again (UDP, final ACK of the handshake, echo request), 3 = an established-flow
 * outbound packet (UDP, TCP ACK with data, echo request) of IPv4 length `len`.
 * Sets the packet's columns; returns its length.
 */
export function writeFlowPacket(
  fs: FlowSpace,
  cols: FrameColumns,
  i: number,
  off: number,
  nowMs: number,
  kind: number,
  id: number,
  phase: number,
  len: number,
): number {
  const b = cols.arena;
  const sport = fs.sport(id);
  const remote = fs.remote(id);
  const dport = fs.dport(id);
  const inbound = phase === 1;
  let n: number;
  if (kind === FLOW_UDP) {
    const l = phase === 3 ? Math.max(len, MIN_UDP_LEN) : FRAME64_IP_LEN;
    n = inbound
      ? writeUdp(b, off, remote, fs.natPublic, dport, sport, l)
      : writeUdp(b, off, fs.insideAddr, remote, sport, dport, l);
  } else if (kind === FLOW_TCP) {
    if (phase === 0) n = writeTcp(b, off, fs.insideAddr, remote, sport, dport, CLIENT_ISN, 0, F_SYN, MIN_TCP_LEN);
    else if (phase === 1)
      n = writeTcp(b, off, remote, fs.natPublic, dport, sport, SERVER_ISN, CLIENT_ISN + 1, F_SYN | F_ACK, MIN_TCP_LEN);
    else if (phase === 2)
      n = writeTcp(b, off, fs.insideAddr, remote, sport, dport, CLIENT_ISN + 1, SERVER_ISN + 1, F_ACK, MIN_TCP_LEN);
    else
      n = writeTcp(
        b,
        off,
        fs.insideAddr,
        remote,
        sport,
        dport,
        CLIENT_ISN + 1,
        SERVER_ISN + 1,
        F_ACK,
        Math.max(len, MIN_TCP_LEN),
      );
  } else {
    const l = phase === 3 ? Math.max(len, MIN_ICMP_LEN) : MIN_ICMP_LEN;
    n = inbound
      ? writeIcmpEcho(b, off, remote, fs.natPublic, 0, sport, 1, l)
      : writeIcmpEcho(b, off, fs.insideAddr, remote, 8, sport, phase === 0 ? 1 : 2, l);
  }
  cols.off[i] = off;
  cols.len[i] = n;
  cols.ingress[i] = inbound ? POINT_INTERNET : fs.insidePoint;
  cols.timeUs[i] = nowMs * 1000;
  return n;
}

// ---- workloads -----------------------------------------------------------------------------------

/** A generator of packets: fill(cols, i, off, nowMs) writes the next packet, returns its length. */
export interface PacketSource {
  /** Packets this source has left, or Infinity. */
  readonly remaining: number;
  /** Largest IPv4 packet it writes. */
  readonly maxLen: number;
  next(cols: FrameColumns, i: number, off: number, nowMs: number): number;
}

/**
 * Clock of the set-up: the first packet and its reply at `nowMs`, the third packet
 * SETUP_STREAM_MS later — Linux (docs/semantics.md §5) makes a UDP entry ASSURED only for a packet
 * more than 2 s after the first one. Measured streams must use a clock at or after SETUP_DONE_MS
 * past the set-up's `nowMs`.
 */
export const SETUP_STREAM_MS = 2500;
export const SETUP_DONE_MS = 3000;

/** Set-up of `flows` flows in two rounds: (out, reply) for every flow, then the third packets. */
function setupSource(
  flows: number,
  maxLen: number,
  write: (cols: FrameColumns, i: number, off: number, nowMs: number, flow: number, phase: number) => number,
): PacketSource {
  let k = 0;
  const total = flows * 3;
  return {
    get remaining() {
      return total - k;
    },
    maxLen,
    next(cols, i, off, nowMs) {
      const n =
        k < 2 * flows
          ? write(cols, i, off, nowMs, k >> 1, k & 1)
          : write(cols, i, off, nowMs + SETUP_STREAM_MS, k - 2 * flows, 2);
      k++;
      return n;
    },
  };
}

/** Established flows: `sessions` UDP flows (ids 0..sessions-1), 64-byte frames. */
export class EstablishedWorkload {
  readonly order: Int32Array;
  constructor(
    readonly fs: FlowSpace,
    readonly sessions: number,
    readonly seed = 1,
    readonly kind = FLOW_UDP,
  ) {
    if (sessions > fs.capacity)
      throw new InputError(`workload: ${sessions} sessions exceed the flow space (${fs.capacity})`);
    this.order = permutation(sessions, seed);
  }
  /** The 3 set-up packets of every flow, flow by flow. */
  setup(): PacketSource {
    const fs = this.fs;
    const kind = this.kind;
    return setupSource(this.sessions, FRAME64_IP_LEN, (cols, i, off, nowMs, f, phase) =>
      writeFlowPacket(fs, cols, i, off, nowMs, kind, f, phase, FRAME64_IP_LEN),
    );
  }
  /**
   * The measured stream: outbound 64-byte frames of the sessions in a seeded random order, every
   * session once before any repeats; `start` continues the order (a run picks up where the last
   * left, so a stream shorter than the sessions still visits all of them over the runs).
   */
  stream(start = 0): PacketSource {
    let j = start;
    const fs = this.fs;
    const order = this.order;
    const S = this.sessions;
    const kind = this.kind;
    return {
      remaining: Infinity,
      maxLen: FRAME64_IP_LEN,
      next(cols, i, off, nowMs) {
        const id = order[j % S];
        j++;
        return writeFlowPacket(fs, cols, i, off, nowMs, kind, id, 3, FRAME64_IP_LEN);
      },
    };
  }
  describe(): string {
    return (
      `${this.sessions} established UDP sessions (set up with 3 packets each: out, reply, and out again 2.5 s later → ASSURED, udp stream timeout), then outbound ` +
      `${FRAME64_IP_LEN}-byte IPv4 UDP packets (64-byte Ethernet frames) of those sessions in a seeded random order, every session once before any repeats; ` +
      this.fs.describe()
    );
  }
}

/** Session setup: every packet the first packet of a new flow (ids from `firstId` upward). */
export class SetupWorkload {
  private nextId: number;
  constructor(
    readonly fs: FlowSpace,
    firstId: number,
    readonly kind = FLOW_UDP,
  ) {
    this.nextId = firstId;
  }
  get used(): number {
    return this.nextId;
  }
  stream(): PacketSource {
    const self = this;
    return {
      remaining: Infinity,
      maxLen: MIN_TCP_LEN + FRAME64_IP_LEN,
      next(cols, i, off, nowMs) {
        return writeFlowPacket(self.fs, cols, i, off, nowMs, self.kind, self.nextId++, 0, FRAME64_IP_LEN);
      },
    };
  }
  describe(): string {
    return (
      `every packet opens a new flow: the first outbound ${this.kind === FLOW_TCP ? 'TCP SYN' : `${FRAME64_IP_LEN}-byte UDP packet`} of a fresh 5-tuple ` +
      `(session creation: conntrack entry, MASQUERADE port choice with port preservation, both flow keys); ${this.fs.describe()}`
    );
  }
}

/** Mixed traffic from a profile: `flows` established flows drawn by popularity, plus new flows. */
export class MixedWorkload {
  readonly kinds: Uint8Array;
  private readonly rank2flow: Int32Array;
  private readonly zipf: ZipfSampler;
  private readonly sizeCdf: Float64Array;
  private readonly sizeLen: Int32Array;
  private readonly rng: Rng;
  private nextNew: number;
  /** Packets generated by kind of traffic: new flows, established by protocol. */
  readonly counts = { newFlows: 0, tcp: 0, udp: 0, icmp: 0, bytes: 0 };

  constructor(
    readonly fs: FlowSpace,
    readonly profile: TrafficProfile,
    readonly seed = 1,
  ) {
    const F = profile.flows;
    this.rng = new Rng(seed * 7919 + 17);
    this.kinds = new Uint8Array(F);
    for (let f = 0; f < F; f++) this.kinds[f] = this.pickKind();
    this.rank2flow = permutation(F, seed + 1);
    this.zipf = new ZipfSampler(F, profile.popularity.kind === 'zipf' ? profile.popularity.s : 0);
    const sw = profile.sizes.reduce((a, s) => a + s.weight, 0);
    this.sizeCdf = new Float64Array(profile.sizes.length);
    this.sizeLen = new Int32Array(profile.sizes.length);
    let acc = 0;
    profile.sizes.forEach((s, k) => {
      acc += s.weight / sw;
      this.sizeCdf[k] = acc;
      this.sizeLen[k] = s.bytes;
    });
    this.nextNew = F;
  }

  private pickKind(): number {
    const u = this.rng.float();
    const m = this.profile.mix;
    return u < m.tcp ? FLOW_TCP : u < m.tcp + m.udp ? FLOW_UDP : FLOW_ICMP;
  }

  private pickSize(): number {
    const u = this.rng.float();
    const c = this.sizeCdf;
    for (let k = 0; k < c.length; k++) if (u < c[k]) return this.sizeLen[k];
    return this.sizeLen[c.length - 1];
  }

  get maxLen(): number {
    return Math.max(MIN_TCP_LEN, ...this.profile.sizes.map((s) => s.bytes));
  }

  /** Set-up: 3 packets per active flow (UDP out/reply/out, TCP handshake, echo/reply/echo). */
  setup(): PacketSource {
    return setupSource(this.profile.flows, FRAME64_IP_LEN, (cols, i, off, nowMs, f, phase) =>
      writeFlowPacket(this.fs, cols, i, off, nowMs, this.kinds[f], f, phase, FRAME64_IP_LEN),
    );
  }

  /** The measured stream (continues the generator: new flows stay new across runs). */
  stream(): PacketSource {
    const self = this;
    return {
      remaining: Infinity,
      maxLen: this.maxLen,
      next(cols, i, off, nowMs) {
        const c = self.counts;
        if (self.profile.newFlowShare > 0 && self.rng.float() < self.profile.newFlowShare) {
          c.newFlows++;
          const kind = self.pickKind();
          const n = writeFlowPacket(self.fs, cols, i, off, nowMs, kind, self.nextNew++, 0, FRAME64_IP_LEN);
          c.bytes += n;
          return n;
        }
        const f = self.rank2flow[self.zipf.sample(self.rng.float())];
        const kind = self.kinds[f];
        if (kind === FLOW_TCP) c.tcp++;
        else if (kind === FLOW_UDP) c.udp++;
        else c.icmp++;
        const n = writeFlowPacket(self.fs, cols, i, off, nowMs, kind, f, 3, self.pickSize());
        c.bytes += n;
        return n;
      },
    };
  }

  /** Flow ids used so far (set-up flows + new flows). */
  get flowsUsed(): number {
    return this.nextNew;
  }

  describe(): string {
    const p = this.profile;
    const top =
      p.popularity.kind === 'zipf'
        ? `; the top 1% of flows carry ${Math.round(this.zipf.topShare(Math.ceil(p.flows / 100)) * 100)}% of established packets`
        : '';
    return (
      `${describeProfile(p)}${top}. Active flows are set up first (3 packets each); established TCP packets are ACKs with ` +
      `zero payload up to the drawn size, UDP datagrams, ICMP echo requests; new flows are a TCP SYN (40 B), a 46-byte UDP packet ` +
      `or an echo request (28 B). ${this.fs.describe()}`
    );
  }
}

/** The scenario used by the benchmark: `base` with conntrack max raised to hold `sessions`. */
export function benchScenario(base: Scenario, sessions: number): Scenario {
  const s: Scenario = structuredClone(base);
  s.conntrack.max = Math.max(base.conntrack.max, Math.ceil(sessions));
  s.name = `${base.name} (bench: conntrack max ${s.conntrack.max})`;
  return s;
}

/** `base` plus `n` extra inside hosts (copies of `like`) at consecutive addresses after it. */
export function withExtraHosts(base: Scenario, like: string, n: number): Scenario {
  const s: Scenario = structuredClone(base);
  const t = s.instances.find((x) => x.name === like);
  if (!t) throw new InputError(`${base.source}: no instance named '${like}'`, base.source, 'instances');
  const taken = new Set(s.instances.map((x) => x.privateIp));
  let a = t.privateIp;
  for (let k = 0; k < n; k++) {
    do a = (a + 1) >>> 0;
    while (taken.has(a));
    taken.add(a);
    s.instances.push({ ...structuredClone(t), name: `${like}${k + 2}`, privateIp: a, elasticIp: null });
  }
  return s;
}

// ---- adversarial keys ------------------------------------------------------------------------------

/**
 * The flow-table hash the core used before issue 20: a multiply / xorshift mix with fixed
 * constants, no key. Anyone could compute it, so flow sets could be chosen to share home slots.
 * Kept here (not in the core) only to choose adversarial benchmark keys.
 */
export function unkeyedFlowHash(slot: number, proto: number, a: number, b: number, ports: number): number {
  let h = Math.imul(a ^ 0x27d4eb2f, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15) ^ b, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ ports, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ ((proto << 8) | slot), 0x2c1b3c6d);
  return (h ^ (h >>> 15)) >>> 0;
}

/**
 * `n` UDP flows of ONE socket (src:sport, as a DNS resolver or QUIC client) to (remote, dport)
 * pairs from `remoteBase` upward whose orig keys all share the top `bits` bits of
 * unkeyedFlowHash at NAT slot `slot`: under that hash they all have home slots in one
 * 2^-bits-wide stretch of any table (multiply-shift range reduction), i.e. one huge probe cluster.
 * Deterministic; searches at most `maxRemotes` remote addresses × 65535 ports.
 */
export function collidingFanOut(
  n: number,
  src: number,
  sport: number,
  remoteBase: number,
  opts: { bits?: number; slot?: number; maxRemotes?: number } = {},
): { dst: Uint32Array; dport: Uint16Array } {
  const bits = opts.bits ?? 8;
  const slot = opts.slot ?? 0;
  const maxRemotes = opts.maxRemotes ?? 4096;
  const dst = new Uint32Array(n);
  const dport = new Uint16Array(n);
  const shift = 32 - bits;
  let target = -1;
  let k = 0;
  for (let r = 0; r < maxRemotes && k < n; r++) {
    const remote = (remoteBase + r) >>> 0;
    for (let p = 1; p <= 65535 && k < n; p++) {
      const top = unkeyedFlowHash(slot, PROTO_UDP, src, remote, ((sport << 16) | p) >>> 0) >>> shift;
      if (target < 0) target = top;
      if (top !== target) continue;
      dst[k] = remote;
      dport[k] = p;
      k++;
    }
  }
  if (k < n) throw new InputError(`workload: only ${k} of ${n} colliding flows within ${maxRemotes} remote addresses`);
  return { dst, dport };
}
