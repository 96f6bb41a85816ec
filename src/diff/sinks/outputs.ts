// What each engine sent, as capture files: per-egress-point pcaps (DIR/<engine>/<point>.pcap) or
// one annotated pcapng per engine (DIR/<engine>.pcapng, an interface per egress point plus
// "dropped", a comment per packet: its story). Outputs are staged synchronously (no promise per
// frame; backpressure once per chunk); the bulk path writes a frame straight from an engine's
// output arena with its link header.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { formatIpv4 } from '../../packet/addr.ts';
import { ETH_HDR_LEN, ETHERTYPE_IPV4, LINKTYPE_ETHERNET } from '../../packet/constants.ts';
import { PcapWriter } from '../../pcap/writer.ts';
import { PcapngWriter } from '../../pcap/pcapng-writer.ts';
import type { Scenario } from '../../spec/scenario.ts';
import type { SharedMemoryPool } from '../../spec/shared-memory.ts';
import { POINT_INTERNET, pointName } from '../../spec/scenario.ts';
import { pointInterfaceName } from './annotate.ts';

const NO_HEADER = new Uint8Array(0);

// Synthetic, stable MAC addresses (locally administered, "NL" = natlab): the VPC router / IGW
// sends every output frame; the receiver is the egress point's host.
export const ROUTER_MAC = Uint8Array.of(0x02, 0x4e, 0x4c, 0xff, 0xff, 0xfe);
export function pointMac(point: number): Uint8Array {
  return Uint8Array.of(0x02, 0x4e, 0x4c, 0x00, (point >>> 8) & 0xff, point & 0xff);
}

export function outputFileName(s: Scenario, point: number): string {
  if (point === POINT_INTERNET) return 'internet.pcap';
  const inst = s.instances[point - 1];
  return `${inst.name}-${formatIpv4(inst.privateIp)}.pcap`;
}

const MAX_TS_SEC = 0xffffffff;

/** The Ethernet header of a frame the VPC router sends to `point`. */
function ethHeaderOf(point: number): Uint8Array {
  const h = new Uint8Array(ETH_HDR_LEN);
  h.set(pointMac(point), 0);
  h.set(ROUTER_MAC, 6);
  h[12] = ETHERTYPE_IPV4 >>> 8;
  h[13] = ETHERTYPE_IPV4 & 0xff;
  return h;
}

/** Annotated capture of one engine (pcapng): DIR/<engine>.pcapng. */
export function engineCaptureName(engine: string): string {
  return `${engine}.pcapng`;
}

/**
 * The outputs of one engine: per-egress pcap files, or one annotated pcapng with an interface per
 * egress point and one ("dropped") for the inputs the engine dropped, as they were fed to it.
 */
export class OutputSet {
  private readonly writers = new Map<number, PcapWriter>();
  /** The same writers by egress point (the bulk path looks one up per output). */
  private readonly byPoint: Array<PcapWriter | undefined> = [];
  private ng: PcapngWriter | null = null;
  /** pcapng: packets in the file so far (every interface): Wireshark's frame.number. */
  private fileCount = 0;
  readonly counts: number[];
  private scratch = new Uint8Array(ETH_HDR_LEN + 65536);
  /**
   * Ethernet header per egress point, all built at once: an array filled in the order outputs
   * first reach each point turned holey in some runs only, and the bulk writer's optimised code
   * was thrown away at the next run's first output (a deoptimisation per run, Round eight).
   */
  private readonly ethHeaders: Uint8Array[];
  clampedTs = 0;

  constructor(
    readonly engine: string,
    readonly scenario: Scenario,
    readonly linkType: number,
    readonly dir: string | null,
    private readonly engineDir = true,
    private readonly fileName: (s: Scenario, point: number) => string = outputFileName,
  ) {
    this.counts = new Array(scenario.instances.length + 1).fill(0);
    this.ethHeaders = [];
    for (let p = 0; p <= scenario.instances.length; p++) this.ethHeaders.push(ethHeaderOf(p)); // every egress point
  }

  static async open(
    engine: string,
    s: Scenario,
    linkType: number,
    outDir: string | null,
    format: 'pcap' | 'pcapng' = 'pcap',
    engineDir = true,
    fileName: (s: Scenario, point: number) => string = outputFileName,
    /** The per-point pcaps' staging buffers' shared memory (the engines' output arenas are in it). */
    pool: SharedMemoryPool | null = null,
  ): Promise<OutputSet> {
    if (format === 'pcapng' && outDir !== null) {
      const o = new OutputSet(engine, s, linkType, outDir);
      const interfaces = [];
      for (let p = 0; p <= s.instances.length; p++)
        interfaces.push({
          linkType,
          name: pointInterfaceName(s, p, formatIpv4),
          description: `what ${engine} sent to ${pointName(s, p)}`,
        });
      interfaces.push({ linkType, name: 'dropped', description: `inputs ${engine} dropped, as they were fed to it` });
      o.ng = await PcapngWriter.open(join(outDir, engineCaptureName(engine)), {
        interfaces,
        comment: `natlab replay: what the ${engine} engine sent at each egress point (one interface each) and the inputs it dropped, each packet commented with its story`,
      });
      return o;
    }
    const dir = outDir === null ? null : engineDir ? join(outDir, engine) : outDir;
    const o = new OutputSet(engine, s, linkType, dir, engineDir, fileName);
    if (dir !== null) {
      await mkdir(dir, { recursive: true });
      for (let p = 0; p <= s.instances.length; p++) {
        const w = await PcapWriter.open(join(dir, fileName(s, p)), { linkType }, pool);
        o.writers.set(p, w);
        o.byPoint[p] = w;
      }
    }
    return o;
  }

  /** Relative file name of a point's output (for references in the report). */
  ref(point: number): string {
    if (this.annotated) return engineCaptureName(this.engine);
    const f = this.fileName(this.scenario, point);
    return this.engineDir ? `${this.engine}/${f}` : f;
  }

  /** True when outputs go to files (outDir given). */
  get writing(): boolean {
    return this.writers.size > 0 || this.ng !== null;
  }

  /** True when writing the annotated pcapng (comments wanted). */
  get annotated(): boolean {
    return this.ng !== null;
  }

  /** Counts one output at `point`; returns its 1-based number in its file. */
  next(point: number): number {
    ++this.counts[point];
    return this.ng ? ++this.fileCount : this.counts[point];
  }

  /** The numbers next() would give these outputs, in order, without counting them. */
  peek(points: number[]): number[] {
    if (this.ng) return points.map((_, k) => this.fileCount + k + 1);
    const next = [...this.counts];
    return points.map((p) => ++next[p]);
  }

  /** Writes one input the engine dropped, as fed (annotated pcapng only; numbered here). */
  writeDropped(timeUs: number, frame: Uint8Array, comment: string): void {
    if (!this.ng) return;
    this.fileCount++;
    this.writeFrame(this.scenario.instances.length + 1, timeUs, frame, comment);
  }

  /** Writes one output (counted with next() first): staged at once, no promise per frame. */
  write(point: number, timeUs: number, frame: Uint8Array, comment?: string): void {
    this.writeFrame(point, timeUs, frame, comment);
  }

  /**
   * Bulk path (per-point pcap files): one output straight from where an engine left it,
   * arena[off, off + len), with the point's link header; no object per frame. The timestamp is
   * read from its column (timesUs[k]) where it is written: no call passes a boxed number.
   */
  writeOut(point: number, timesUs: Float64Array, k: number, arena: Uint8Array, off: number, len: number): void {
    this.writeOutAt(point, timesUs, k, arena, -1, off, len);
  }

  /** writeOut with the address of arena[0] in the writers' shared memory pool (-1: not in it). */
  writeOutAt(
    point: number,
    timesUs: Float64Array,
    k: number,
    arena: Uint8Array,
    arenaAt: number,
    off: number,
    len: number,
  ): void {
    const w = this.byPoint[point];
    if (w === undefined) return;
    this.clampedTs += w.writeFrameUs(
      timesUs,
      k,
      this.linkType === LINKTYPE_ETHERNET ? this.ethHeader(point) : NO_HEADER,
      arena,
      off,
      len,
      arenaAt,
    );
  }

  /** Backpressure, once per chunk: resolves when every file stream has caught up. */
  async drained(): Promise<void> {
    if (this.ng) await this.ng.drained();
    for (const w of this.writers.values()) await w.drained();
  }

  private writeFrame(point: number, timeUs: number, frame: Uint8Array, comment?: string): void {
    const w = this.ng ?? this.writers.get(point);
    if (!w) return;
    let tsSec = Math.floor(timeUs / 1e6);
    let tsNsec = (timeUs - tsSec * 1e6) * 1000;
    if (tsSec > MAX_TS_SEC && !this.ng) {
      tsSec = MAX_TS_SEC;
      tsNsec = 999_999_000;
      this.clampedTs++;
    }
    let data = frame;
    if (this.linkType === LINKTYPE_ETHERNET) {
      const need = ETH_HDR_LEN + frame.length;
      if (this.scratch.length < need) this.scratch = new Uint8Array(need);
      const b = this.scratch;
      b.set(this.ethHeader(point), 0);
      b.set(frame, ETH_HDR_LEN);
      data = b.subarray(0, need);
    }
    if (this.ng) this.ng.writeSync({ interfaceId: point, tsSec, tsNsec, data, comment });
    else (w as PcapWriter).writeSync({ tsSec, tsNsec, data });
  }

  /** The Ethernet header of frames sent to `point` (built once). */
  private ethHeader(point: number): Uint8Array {
    return this.ethHeaders[point] ?? ethHeaderOf(point);
  }

  async close(): Promise<void> {
    for (const w of this.writers.values()) await w.close();
    await this.ng?.close();
  }
}
