// Pull-based, chunked file reader: the caller asks for `n` bytes at the cursor and the source
// reads just enough of the file. Memory is one chunk plus the largest unit asked for. Buffers
// handed out (via `buf.subarray`) are never written again: a refill allocates a fresh buffer and
// copies the unread tail, so record views stay valid after later reads (zero copy per record).
import { open, type FileHandle } from 'node:fs/promises';

export const DEFAULT_CHUNK = 64 * 1024;

export class ByteSource {
  /** Current buffer; valid bytes are buf[pos, end). */
  buf: Buffer = Buffer.alloc(0);
  pos = 0;
  end = 0;
  /** File offset of buf[0]. */
  base = 0;
  /** True once the file has no more bytes to read. */
  eof = false;
  private filePos: number;
  private closed = false;

  private constructor(
    private fh: FileHandle,
    readonly size: number,
    private chunk: number,
    start: number,
  ) {
    this.filePos = start;
    this.base = start;
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

  /** File offset of the cursor. */
  get offset(): number {
    return this.base + this.pos;
  }

  /**
   * Makes at least `n` bytes available at the cursor unless the file ends first.
   * Returns true if they are available.
   */
  async need(n: number): Promise<boolean> {
    if (this.end - this.pos >= n) return true;
    if (this.eof) return false;
    const have = this.end - this.pos;
    const size = Math.max(this.chunk, n);
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, this.pos, this.end);
    this.base += this.pos;
    this.buf = next;
    this.pos = 0;
    this.end = have;
    while (this.end < n || this.end < size) {
      const { bytesRead } = await this.fh.read(next, this.end, size - this.end, this.filePos);
      if (bytesRead === 0) {
        this.eof = true;
        break;
      }
      this.filePos += bytesRead;
      this.end += bytesRead;
      if (this.end >= n) break;
    }
    return this.end - this.pos >= n;
  }

  /** Advances the cursor by n bytes that are available. */
  consume(n: number): void {
    this.pos += n;
  }

  /** Skips n bytes (available or not). Returns false if the file ended first. */
  async skip(n: number): Promise<boolean> {
    const a = this.end - this.pos;
    if (n <= a) {
      this.pos += n;
      return true;
    }
    const fileTarget = this.base + this.pos + n;
    this.base = fileTarget;
    this.pos = this.end = 0;
    this.buf = Buffer.alloc(0);
    this.filePos = fileTarget;
    if (fileTarget > this.size) {
      this.eof = true;
      return false;
    }
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}
