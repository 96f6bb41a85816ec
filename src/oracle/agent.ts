// Node side of the per-namespace agent (agent-script.ts): a long-lived `ip netns exec NS perl`
// process that injects frames into, and captures frames from, one interface of one namespace.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { AGENT_SCRIPT } from './agent-script.ts';
import { run, KernelCommandError, killChild, stopChild } from './exec.ts';

/** sll_pkttype values (linux/if_packet.h). */
export const PACKET_HOST = 0;
export const PACKET_OUTGOING = 4;

export interface CapturedFrame {
  /** PACKET_* type: PACKET_OUTGOING for frames this namespace sent, else received. */
  pktType: number;
  /** Whole Ethernet frame. */
  bytes: Uint8Array;
}

interface Pending {
  cmd: string;
  resolve: (v: { arg: number; payload: Buffer }) => void;
  reject: (e: Error) => void;
}

/** Runs the agent script's one-shot `setup` mode in a namespace. Returns its warnings. */
export async function runSetup(netns: string, args: readonly string[]): Promise<string[]> {
  const r = await run('perl', ['-e', AGENT_SCRIPT, 'setup', ...args], { netns, allowFail: true });
  if (r.code !== 0) throw new KernelCommandError(['perl', 'setup', `(in ${netns})`, ...args], r.code, r.stderr);
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('warn '))
    .map((l) => `${netns}: ${l.slice(5)}`);
}

export class Agent {
  private child: ChildProcessByStdio<Writable, Readable, Readable> | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private pending: Pending[] = [];
  private frames: CapturedFrame[] = [];
  private ready: Promise<void>;
  private readyResolve!: () => void;
  private readyReject!: (e: Error) => void;
  private stderr = '';
  private dead: Error | null = null;

  /** Warnings of the setup step (e.g. a read-only optional sysctl). */
  setupWarnings: string[] = [];

  constructor(
    readonly netns: string,
    readonly ifname: string,
    readonly capture: boolean,
    /** `setup` arguments run by the agent before it reports ready. */
    readonly setupArgs: readonly string[] = [],
  ) {
    this.ready = new Promise((res, rej) => {
      this.readyResolve = res;
      this.readyReject = rej;
    });
  }

  start(): Promise<void> {
    const args = [
      'netns',
      'exec',
      this.netns,
      'perl',
      '-e',
      AGENT_SCRIPT,
      'agent',
      this.ifname,
      this.capture ? 'cap' : 'send',
      ...this.setupArgs,
    ];
    const child = spawn('ip', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout.on('data', (b: Buffer) => this.onData(b));
    child.stderr.on('data', (b: Buffer) => {
      this.stderr = (this.stderr + b.toString('utf8')).slice(-4000);
    });
    child.stdin.on('error', () => {});
    child.on('error', (e) => this.die(new Error(`agent in ${this.netns}: ${e.message}`)));
    child.on('exit', (code, sig) => {
      this.die(
        new Error(
          `agent in ${this.netns} exited (${sig ?? code})${this.stderr.trim() ? `: ${this.stderr.trim()}` : ''}`,
        ),
      );
    });
    return this.ready;
  }

  /** Process id (for the signal-time cleanup). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private die(e: Error): void {
    if (this.dead) return;
    this.dead = e;
    this.readyReject(e);
    for (const p of this.pending) p.reject(e);
    this.pending = [];
  }

  private onData(b: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, b]) : b;
    let off = 0;
    while (this.buf.length - off >= 6) {
      const len = this.buf.readUInt32BE(off + 2);
      if (this.buf.length - off < 6 + len) break;
      const cmd = String.fromCharCode(this.buf[off]);
      const arg = this.buf[off + 1];
      const payload = this.buf.subarray(off + 6, off + 6 + len);
      off += 6 + len;
      if (cmd === 'P') {
        this.frames.push({ pktType: arg, bytes: new Uint8Array(payload) });
      } else if (cmd === 'R') {
        this.setupWarnings = payload.length
          ? payload
              .toString('utf8')
              .split('\n')
              .map((w) => `${this.netns}: ${w}`)
          : [];
        this.readyResolve();
      } else if (cmd === 'E') {
        this.die(new Error(`agent in ${this.netns}: ${payload.toString('utf8')}`));
      } else {
        const p = this.pending.shift();
        if (p) p.resolve({ arg, payload: Buffer.from(payload) });
      }
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(off);
  }

  private request(cmd: string, payload: Uint8Array): Promise<{ arg: number; payload: Buffer }> {
    if (this.dead) return Promise.reject(this.dead);
    const child = this.child;
    if (!child) return Promise.reject(new Error(`agent in ${this.netns} not started`));
    return new Promise((resolve, reject) => {
      this.pending.push({ cmd, resolve, reject });
      const h = Buffer.alloc(6);
      h.write(cmd, 0, 'latin1');
      h.writeUInt32BE(payload.length, 2);
      child.stdin.write(h);
      if (payload.length) child.stdin.write(payload);
    });
  }

  /** Opens the packet socket (after the interface is configured and up). */
  async open(): Promise<void> {
    await this.request('O', new Uint8Array(0));
  }

  /** Sends an Ethernet frame; resolves once send() returned (0 or the errno). */
  async inject(frame: Uint8Array): Promise<number> {
    return (await this.request('I', frame)).arg;
  }

  /** Resolves once every frame the kernel had queued on the socket has been received here. */
  async sync(): Promise<void> {
    await this.request('Y', new Uint8Array(0));
  }

  /** conntrack statistics and xt_recent hits of the namespace (lists are flushed). */
  async stats(): Promise<string> {
    return (await this.request('S', new Uint8Array(0))).payload.toString('utf8');
  }

  /** Frames received since the last call. */
  take(): CapturedFrame[] {
    const f = this.frames;
    this.frames = [];
    return f;
  }

  get pendingFrames(): number {
    return this.frames.length;
  }

  kill(): void {
    killChild(this.child);
  }

  /** Ends the agent and waits for it to exit. */
  async stop(): Promise<void> {
    await stopChild(this.child);
  }
}
