// Pull-based, chunked file reader: the caller asks for `n` bytes at the cursor and the source
// reads just enough of the file, with one chunk of read-ahead so file I/O overlaps the caller's
// work. Memory is about two chunks plus the largest unit asked for, whatever the file size.
// Buffers handed out (via `buf.subarray`) are never written again: every read goes into a fresh
// buffer, a quarter chunk (at most 64 KiB) into it; a leftover tail that fits is copied into that
// room in front of the next chunk, a longer one joined with it in a new buffer — record views stay
// valid after later reads (zero copy per record). reuseBuffers trades that for fewer allocations.
import { open, type FileHandle } from 'node:fs/promises';
import type { SharedMemoryPool } from '../spec/shared-memory.ts';

export const DEFAULT_CHUNK = 256 * 1024;
const MAX_SPARE = 3;
/**
 * Room kept before each piece read from the file: a record cut by the piece's start (its first
 * bytes at the end of the previous piece) is completed by copying those bytes in front of it,
 * instead of copying both into a new buffer. Longer tails are joined as before.
 */
const HEADROOM = 64 * 1024;
/** Buffers taken from a shared memory pool (reuseBuffers): a few are in use at once, all are kept. */
const MAX_POOLED = 6;

export class ByteSource {
  /** Current buffer; valid bytes are buf[pos, end). */
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  end = 0;
  /** File offset of buf[0]. */
  base = 0;
  /** True once the file has no more bytes to read. */
  eof = false;
  /** File offset of the next byte to read from the file (after the read-ahead, if any, lands). */
  private filePos: number;
  private ahead: Promise<Buffer> | null = null;
  private closed = false;
  /** reuseBuffers: buffers the cursor has left, read into again (at most MAX_SPARE). */
  private readonly spare: ArrayBuffer[] = [];
  /**
   * Read into buffers the cursor has left instead of fresh ones. Then views handed out are valid
   * only until the next need()/skip() (bulk consumers that copy what they keep); fewer fresh
   * ArrayBuffers mean fewer full GCs on a long read.
   */
  reuseBuffers = false;
  /**
   * With reuseBuffers: read into regions of this shared memory (a consumer that copies the records
   * out of them with its memmove, spec/shared-memory.ts; ArrayBuffers of the heap when it is full).
   */
  pool: SharedMemoryPool | null = null;
  /** Pool regions taken so far, and those the cursor has left (always kept: the pool does not free). */
  private pooled = 0;
  private readonly poolSpare: Buffer[] = [];
  /** The buffer each buffer handed out was carved from (its headroom; what to keep for reuse). */
  private readonly regions = new WeakMap<Buffer, Buffer>();

  /** Room before each piece (HEADROOM, at most a quarter of a piece). */
  private readonly headroom: number;

  private constructor(
    private fh: FileHandle,
    readonly size: number,
    private chunk: number,
    start: number,
  ) {
    this.filePos = start;
    this.base = start;
    this.headroom = Math.min(HEADROOM, chunk >>> 2);
  }

  static async open(path: string, chunk = DEFAULT_CHUNK, start = 0): Promise<ByteSource> {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw Object.assign(new Error(`${path}: not a regular file`), { code: 'ENOTFILE' });
      return new ByteSource(fh, st.size, Math.max(16, chunk), start);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Bytes available at the cursor. */
  get avail(): number {
    return this.end - this.pos;
  }

  /** Bytes read from the file so far (including the read-ahead once it lands). */
  get bytesRead(): number {
    return this.filePos;
  }

  /** File offset of the cursor. */
  get offset(): number {
    return this.base + this.pos;
  }

  /** Starts reading the next piece of the file (at least `min` bytes asked for). */
  private readPiece(min = 0): Promise<Buffer> {
    const size = Math.max(this.chunk, min);
    const room = size === this.chunk ? this.headroom : 0;
    const b = this.fresh(room + size);
    const p = this.fh.read(b, room, size, this.filePos).then(({ bytesRead }) => {
      this.filePos += bytesRead;
      const piece = b.subarray(room, room + bytesRead);
      this.regions.set(piece, b);
      return piece;
    });
    p.catch(() => {}); // surfaced when awaited; never an unhandled rejection
    return p;
  }

  /** Takes the next piece: the read-ahead if there is one, else a fresh read. */
  private async nextPiece(min: number): Promise<Buffer> {
    const p = this.ahead ?? this.readPiece(min);
    this.ahead = null;
    return p;
  }

  /**
   * Makes at least `n` bytes available at the cursor unless the file ends first.
   * Returns true if they are available.
   */
  async need(n: number): Promise<boolean> {
    while (this.end - this.pos < n) {
      if (this.eof) return false;
      const have = this.end - this.pos;
      const piece = await this.nextPiece(n - have);
      if (piece.length === 0) {
        this.eof = true;
        return false;
      }
      if (have === 0) {
        this.base += this.end;
        this.drop(this.buf);
        this.buf = piece;
      } else if (have <= this.headroomOf(piece)) {
        // The tail goes in front of the piece, in the room left for it there.
        const joined = this.widen(piece, have);
        this.buf.copy(joined, 0, this.pos, this.end);
        this.base += this.pos;
        this.drop(this.buf);
        this.buf = joined;
      } else {
        const joined = this.fresh(have + piece.length);
        this.buf.copy(joined, 0, this.pos, this.end);
        piece.copy(joined, have);
        this.base += this.pos;
        this.drop(this.buf);
        this.drop(piece);
        this.buf = joined;
      }
      this.pos = 0;
      this.end = have + piece.length;
      if (this.filePos < this.size) this.ahead = this.readPiece();
    }
    return true;
  }

  /** Bytes before `piece` in the buffer it was read into that belong to no one (0: none). */
  private headroomOf(piece: Buffer): number {
    const r = this.regions.get(piece);
    return r === undefined ? 0 : piece.byteOffset - r.byteOffset;
  }

  /** `piece` with `have` bytes of its headroom in front of it. */
  private widen(piece: Buffer, have: number): Buffer {
    const b = Buffer.from(piece.buffer, piece.byteOffset - have, have + piece.length);
    this.regions.set(b, this.regions.get(piece)!);
    return b;
  }

  /** A buffer of at least `size` bytes: a spare one (reuseBuffers) or a fresh one. */
  private fresh(size: number): Buffer {
    let r: Buffer | null = null;
    if (this.reuseBuffers && this.pool !== null) {
      const ps = this.poolSpare;
      for (let i = ps.length - 1; i >= 0 && r === null; i--) {
        if (ps[i].length < size) continue;
        r = ps[i];
        ps[i] = ps[ps.length - 1];
        ps.pop();
      }
      if (r === null && this.pooled < MAX_POOLED && size <= this.headroom + this.chunk) {
        const v = this.pool.alloc(this.headroom + this.chunk);
        if (v !== null) {
          this.pooled++;
          r = Buffer.from(v.buffer, v.byteOffset, v.length);
        }
      }
    }
    if (r === null) {
      const sp = this.spare;
      for (let i = sp.length - 1; i >= 0 && r === null; i--) {
        if (sp[i].byteLength < size) continue;
        r = Buffer.from(sp[i], 0, size);
        sp[i] = sp[sp.length - 1];
        sp.pop();
      }
    }
    r ??= Buffer.allocUnsafe(size);
    this.regions.set(r, r);
    return r;
  }

  /** The cursor has left `b`: keep its memory for the next read (reuseBuffers). */
  private drop(b: Buffer): void {
    if (!this.reuseBuffers) return;
    const r = this.regions.get(b) ?? b;
    if (this.pool !== null && this.pool.addressOf(r) >= 0) {
      this.poolSpare.push(r); // a pool region: always kept (the pool does not free)
      return;
    }
    if (r.byteOffset !== 0 || r.buffer.byteLength < this.chunk || r.buffer instanceof SharedArrayBuffer) return;
    if (this.spare.length < MAX_SPARE) this.spare.push(r.buffer);
  }

  /** Advances the cursor by n bytes that are available. */
  consume(n: number): void {
    this.pos += n;
  }

  /** Skips n bytes (available or not) without keeping them. Returns false if the file ended first. */
  async skip(n: number): Promise<boolean> {
    const a = this.end - this.pos;
    if (n <= a) {
      this.pos += n;
      return true;
    }
    let rest = n - a;
    this.base += this.end;
    this.buf = Buffer.alloc(0);
    this.pos = this.end = 0;
    if (this.ahead) {
      // The read-ahead holds the bytes right after the buffer: skip through it.
      const piece = await this.nextPiece(0);
      if (rest < piece.length) {
        this.buf = piece;
        this.pos = rest;
        this.end = piece.length;
        if (this.filePos < this.size) this.ahead = this.readPiece();
        return true;
      }
      rest -= piece.length;
      this.base += piece.length;
    }
    this.base += rest;
    this.filePos += rest;
    if (this.filePos > this.size) {
      this.eof = true;
      return false;
    }
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ahead) await this.ahead.catch(() => {});
    this.ahead = null;
    await this.fh.close();
  }
}
