// Node side of the fast injection path (hub-script.ts): one `perl` process pinned to one CPU with
// a packet socket in every namespace of a run; Node sends a batch of frames per round trip and
// gets, per packet, the frames it caused and the evidence, once the kernel is done with it.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { cpus } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { HUB_SCRIPT } from './hub-script.ts';
import { killChild, stopChild } from './exec.ts';

/** setns(2) syscall numbers by Node's process.arch (the hub calls it through Perl's syscall()). */
const SETNS_NR: Record<string, number> = {
  x64: 308,
  arm64: 268,
  riscv64: 268,
  loong64: 268,
  arm: 375,
  ia32: 346,
  ppc64: 350,
  s390x: 339,
};

/** setns syscall number on this machine, or -1 (the fast path is then unavailable). */
export function setnsSyscall(): number {
  return SETNS_NR[process.arch] ?? -1;
}

/**
 * Fence rounds: at least MIN_ROUNDS, and the last QUIET_ROUNDS without capture activity (a
 * packet still in the kernel shows activity at least every second round: hub-script.ts).
 */
export const HUB_MIN_ROUNDS = 3;
export const HUB_QUIET_ROUNDS = 3;
/** Packets per round trip with Node. */
export const HUB_BATCH = 256;

export interface HubFrame {
  sock: number;
  pktType: number;
  /** Whole Ethernet frame. */
  bytes: Uint8Array;
}

export interface HubPacket {
  errno: number;
  /** Frames that arrived before this packet was injected (not attributed). */
  late: number;
  /** Fence rounds it took. */
  rounds: number;
  frames: HubFrame[];
  /** Evidence text per stat id (the agent's 'S' format). */
  stats: Map<number, string>;
  /** performance.now() when its result reached Node (an upper bound of its injection time). */
  doneAt: number;
}

export interface HubConfig {
  sockets: Array<{ id: number; netns: string; ifname: string }>;
  /**
   * Interfaces watched for activity only (their frames are never results): the security-group
   * namespaces' links, so that every hop of the path stays next to a watched interface.
   */
  activity?: Array<{ netns: string; ifname: string }>;
  fence: { netns: string; tx: string; rx: string };
  /**
   * Evidence namespaces. `counterSocket` (instances): the socket on the namespace's only link;
   * its conntrack statistics and /proc/net/snmp are read after a packet that crossed that link.
   */
  stats: Array<{ id: number; pid: number; counterSocket?: number }>;
  eips: number[];
  inet: number;
}

function parseStats(text: string): Map<number, string> {
  const m = new Map<number, string>();
  let id = -1;
  let cur: string[] = [];
  for (const l of text.split('\n')) {
    if (l.startsWith('#ns ')) {
      if (id >= 0) m.set(id, cur.join('\n'));
      id = Number(l.slice(4));
      cur = [];
    } else cur.push(l);
  }
  if (id >= 0) m.set(id, cur.join('\n'));
  return m;
}

export class Hub {
  private child: ChildProcessByStdio<Writable, Readable, Readable> | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private stderr = '';
  private dead: Error | null = null;
  private readyRes!: () => void;
  private readyRej!: (e: Error) => void;
  private ready: Promise<void>;
  private cur: {
    packets: HubPacket[];
    frames: HubFrame[];
    resolve: (v: HubPacket[]) => void;
    reject: (e: Error) => void;
  } | null = null;

  constructor(
    readonly config: HubConfig,
    readonly cpu: number,
  ) {
    this.ready = new Promise((res, rej) => {
      this.readyRes = res;
      this.readyRej = rej;
    });
  }

  private static created = 0;

  /** CPU for the next hub (spread over the CPUs by process id and by engine within a process). */
  static pickCpu(): number {
    const n = Math.max(1, cpus().length);
    return (process.pid + Hub.created++) % n;
  }

  start(): Promise<void> {
    const c = this.config;
    const args = [
      '-c',
      String(this.cpu),
      'perl',
      '-e',
      HUB_SCRIPT,
      'hub',
      String(setnsSyscall()),
      String(HUB_MIN_ROUNDS),
      String(HUB_QUIET_ROUNDS),
      ...c.sockets.map((s) => `sock:${s.id}:${s.netns}:${s.ifname}:cap`),
      ...(c.activity ?? []).map((s) => `act:${s.netns}:${s.ifname}`),
      `fence:${c.fence.netns}:${c.fence.tx}:${c.fence.rx}`,
      ...c.stats.map((s) => `stat:${s.id}:${s.pid}:${s.counterSocket ?? '-'}`),
      ...c.eips.map((e) => `eip:${(e >>> 0).toString(16).padStart(8, '0')}`),
      `inet:${c.inet}`,
    ];
    const child = spawn('taskset', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout.on('data', (b: Buffer) => this.onData(b));
    child.stderr.on('data', (b: Buffer) => {
      this.stderr = (this.stderr + b.toString('utf8')).slice(-4000);
    });
    child.stdin.on('error', () => {});
    child.on('error', (e) => this.die(new Error(`kernel hub: ${e.message}`)));
    child.on('exit', (code, sig) =>
      this.die(new Error(`kernel hub exited (${sig ?? code})${this.stderr.trim() ? `: ${this.stderr.trim()}` : ''}`)),
    );
    return this.ready;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private die(e: Error): void {
    if (this.dead) return;
    this.dead = e;
    this.readyRej(e);
    this.cur?.reject(e);
    this.cur = null;
  }

  private onData(b: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, b]) : b;
    let off = 0;
    const now = performance.now();
    while (this.buf.length - off >= 6) {
      const len = this.buf.readUInt32BE(off + 2);
      if (this.buf.length - off < 6 + len) break;
      const cmd = this.buf[off];
      const arg = this.buf[off + 1];
      const p = this.buf.subarray(off + 6, off + 6 + len);
      off += 6 + len;
      if (cmd === 0x46 /* F */) {
        this.cur?.frames.push({ sock: arg, pktType: p[0], bytes: new Uint8Array(p.subarray(1)) });
      } else if (cmd === 0x44 /* D */) {
        const c = this.cur;
        if (c) {
          c.packets.push({
            errno: arg,
            late: p.readUInt16BE(0),
            rounds: p.readUInt16BE(2),
            frames: c.frames,
            stats: parseStats(p.subarray(4).toString('latin1')),
            doneAt: now,
          });
          c.frames = [];
        }
      } else if (cmd === 0x5a /* Z */) {
        const c = this.cur;
        this.cur = null;
        c?.resolve(c.packets);
      } else if (cmd === 0x52 /* R */) {
        this.readyRes();
      } else if (cmd === 0x45 /* E */) {
        this.die(new Error(`kernel hub: ${p.toString('utf8')}`));
      }
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(off);
  }

  /**
   * Injects the frames in order, each once the kernel is done with the one before; resolves with
   * one result per packet processed (fewer than given when a hairpin stopped the batch).
   */
  run(items: ReadonlyArray<{ sock: number; frame: Uint8Array }>): Promise<HubPacket[]> {
    if (this.dead) return Promise.reject(this.dead);
    const child = this.child;
    if (!child) return Promise.reject(new Error('kernel hub not started'));
    if (this.cur) return Promise.reject(new Error('kernel hub: a batch is already running'));
    let size = 0;
    for (const it of items) size += 5 + it.frame.length;
    const msg = Buffer.alloc(6 + size);
    msg.write('B', 0, 'latin1');
    msg.writeUInt32BE(size, 2);
    let o = 6;
    for (const it of items) {
      msg[o] = it.sock;
      msg.writeUInt32BE(it.frame.length, o + 1);
      msg.set(it.frame, o + 5);
      o += 5 + it.frame.length;
    }
    return new Promise((resolve, reject) => {
      this.cur = { packets: [], frames: [], resolve, reject };
      child.stdin.write(msg);
    });
  }

  kill(): void {
    killChild(this.child);
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
  }
}
