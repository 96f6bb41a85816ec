// What the pcap and pcapng readers share: a record queue filled by `pump()`, pull iteration (the
// file is read only as fast as the consumer takes records: backpressure), deferred errors (records
// before a fatal error are delivered first), and capped warnings.
import { InputError } from '../spec/errors.ts';
import type { CaptureInfo, CaptureReader, CaptureRecord, RecordSink } from './types.ts';

/** Largest captured length natlab accepts (libpcap's maximum snapshot length, 256 KiB). */
export const MAX_CAPLEN = 262144;
/** Individual warnings kept per kind; the rest are summarised as a count. */
const WARN_CAP = 5;

export function inputError(file: string, where: string, what: string): InputError {
  return new InputError(where ? `${file}: ${where}: ${what}` : `${file}: ${what}`, file, where || undefined);
}

export abstract class BaseReader implements CaptureReader {
  readonly warnings: string[] = [];
  count = 0;
  protected q: CaptureRecord[] = [];
  protected qHead = 0;
  protected finished = false;
  protected pending: unknown = null;
  private warnCounts = new Map<string, number>();

  protected constructor(
    readonly path: string,
    readonly info: CaptureInfo,
  ) {}

  /**
   * Appends at least one record to `q` and returns true, or returns false at the end of the file.
   * May throw InputError; records already queued are delivered before the error is thrown.
   */
  protected abstract pump(): Promise<boolean>;
  abstract readonly fileSize: number;
  abstract readonly bytesRead: number;
  protected abstract release(): Promise<void>;

  protected warn(kind: string, msg: string): void {
    const n = (this.warnCounts.get(kind) ?? 0) + 1;
    this.warnCounts.set(kind, n);
    if (n <= WARN_CAP) this.warnings.push(`${this.path}: ${msg}`);
  }

  private summariseWarnings(): void {
    for (const [kind, n] of this.warnCounts) {
      if (n > WARN_CAP) this.warnings.push(`${this.path}: ... and ${n - WARN_CAP} more ${kind} warnings (${n} in all)`);
    }
    this.warnCounts.clear();
  }

  protected push(rec: CaptureRecord): void {
    this.q.push(rec);
  }

  async next(): Promise<CaptureRecord | null> {
    while (this.qHead >= this.q.length) {
      if (this.finished) return null;
      if (this.pending !== null) {
        const e = this.pending;
        this.pending = null;
        this.finished = true;
        await this.close();
        throw e;
      }
      this.q.length = 0;
      this.qHead = 0;
      let more: boolean;
      try {
        more = await this.pump();
      } catch (e) {
        if (this.q.length > 0) {
          this.pending = e;
          more = true;
        } else {
          this.finished = true;
          await this.close();
          throw e;
        }
      }
      if (!more && this.q.length === 0) {
        this.finished = true;
        await this.close();
        return null;
      }
    }
    const r = this.q[this.qHead];
    this.q[this.qHead++] = undefined as unknown as CaptureRecord;
    this.count++;
    return r;
  }

  nextQueued(): CaptureRecord | null {
    if (this.qHead >= this.q.length) return null;
    const r = this.q[this.qHead];
    this.q[this.qHead++] = undefined as unknown as CaptureRecord;
    this.count++;
    return r;
  }

  async readInto(sink: RecordSink, max: number): Promise<number> {
    let n = 0;
    while (n < max) {
      let r = this.nextQueued();
      if (r === null) {
        if (n > 0) break;
        r = await this.next();
        if (r === null) return 0;
      }
      sink.record(r.index, r.tsSec, r.tsNsec, r.timeUs, r.linkType, r.data, 0, r.data.length, r.origLen);
      n++;
    }
    return n;
  }

  async *batches(max = 1024): AsyncIterableIterator<CaptureRecord[]> {
    try {
      for (;;) {
        const first = await this.next();
        if (first === null) return;
        const batch = [first];
        // Take what is already decoded without another read.
        while (batch.length < max && this.qHead < this.q.length) {
          const r = this.q[this.qHead];
          this.q[this.qHead++] = undefined as unknown as CaptureRecord;
          this.count++;
          batch.push(r);
        }
        yield batch;
      }
    } finally {
      await this.close();
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<CaptureRecord> {
    try {
      for (;;) {
        const r = await this.next();
        if (r === null) return;
        yield r;
      }
    } finally {
      await this.close();
    }
  }

  private closing: Promise<void> | null = null;
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        this.finished = true;
        this.summariseWarnings();
        await this.release();
      })();
    }
    return this.closing;
  }
}

/** Seconds + fraction in `unitsPerSec` units → normalised record timestamp fields. */
export function makeRecord(
  index: number,
  tsSec: number,
  tsNsec: number,
  linkType: number,
  data: Uint8Array,
  origLen: number,
  interfaceId = 0,
  comment: string | null = null,
): CaptureRecord {
  return {
    index,
    tsSec,
    tsNsec,
    timeUs: tsSec * 1e6 + Math.floor(tsNsec / 1000),
    linkType,
    data,
    origLen,
    interfaceId,
    comment,
  };
}
