// The file output under both capture writers (pcap and pcapng): bytes are staged in order in a
// 256 KiB buffer synchronously and handed to the file stream a buffer at a time; `drained()` is the
// backpressure (it resolves once the stream has drained when it was behind). The writers own the
// format; this owns the file.

import { createWriteStream, type WriteStream } from 'node:fs';
import { InputError } from '../spec/errors.ts';
import type { SharedMemoryPool } from '../spec/shared-memory.ts';

/** Staging buffer: one file-stream write per this many bytes (bulk writers write a chunk at a time). */
const STAGE = 256 * 1024;
const RESOLVED = Promise.resolve();
/**
 * Written staging buffers kept for reuse. A bulk writer stages a chunk's records (replay: 4096,
 * ~1.4 MB of IMIX, 6 buffers) before it waits for the stream once: with fewer spares than the
 * buffers in flight, a third of the hand-offs allocated a fresh buffer (external memory: a full GC
 * every ~200 ms of a long replay).
 */
const MAX_SPARE = 16;
/**
 * Staging buffers a file takes from a shared memory pool (bulk writers copy frames out of shared
 * arenas with the pool's memmove); they are always kept for reuse, the file's later ones are
 * ordinary buffers.
 */
const MAX_POOLED = 16;
/** The pool bytes one file's staging buffers take at most. */
export const STAGED_POOL_BYTES = MAX_POOLED * STAGE;

export class StagedFile {
  private buf: Buffer;
  /** The address of buf[0] in the pool (copy), or -1 when buf is not in it. */
  bufAt = -1;
  /** Staging buffers allocated so far (the first included): reuse keeps this at a few. */
  allocated = 1;
  /** Of them, taken from the pool. */
  private pooled = 0;
  private fill = 0;
  private error: Error | null = null;
  private closed = false;
  private drain: Promise<void> | null = null;
  /**
   * Staging buffers whose stream write has completed, for reuse: a long write then allocates no
   * new buffers (fresh ArrayBuffers are external memory, each batch of them a full GC).
   */
  private readonly spare: Buffer[] = [];

  private constructor(
    readonly path: string,
    /** Names the writer in errors ("pcap writer", "pcapng writer"). */
    private readonly what: string,
    private readonly ws: WriteStream,
    /** Where staging buffers come from first (null: ordinary buffers only). */
    readonly pool: SharedMemoryPool | null = null,
  ) {
    ws.on('error', (e) => {
      this.error ??= e;
    });
    this.buf = this.fresh(STAGE);
    this.setBuf(this.buf);
  }

  /**
   * Creates (truncates) `path`; a path that cannot be created is an InputError naming why. With a
   * pool, the staging buffers are regions of it (bufAt: their address, for the pool's memmove).
   */
  static async open(path: string, what: string, pool: SharedMemoryPool | null = null): Promise<StagedFile> {
    const ws = createWriteStream(path);
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const why =
        err.code === 'ENOENT'
          ? 'no such directory'
          : err.code === 'EACCES'
            ? 'permission denied'
            : err.code === 'EISDIR'
              ? 'is a directory'
              : err.message;
      throw new InputError(`${path}: cannot create: ${why}`, path);
    }
    return new StagedFile(path, what, ws, pool);
  }

  /**
   * Room for `need` more bytes: returns the staging buffer, to be written at `offset` and then
   * `commit`ted. Throws a stream error seen earlier, or when the file is closed.
   */
  reserve(need: number): Buffer {
    if (this.error) throw this.error;
    if (this.closed) throw new Error(`${this.what}: ${this.path} is closed`);
    if (this.fill + need > this.buf.length) this.handOff(need);
    return this.buf;
  }

  /** Where the next reserved bytes go in the buffer `reserve` returned. */
  get offset(): number {
    return this.fill;
  }

  /** The `n` bytes written at `offset` are part of the file. */
  commit(n: number): void {
    this.fill += n;
  }

  /** Resolves at once unless the file stream is behind (then on 'drain'). */
  drained(): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    return this.ws.writableNeedDrain ? this.waitDrain() : RESOLVED;
  }

  /** Hands the staged bytes to the file stream and starts a fresh staging buffer. */
  private handOff(nextNeed: number): void {
    if (this.fill > 0) {
      const full = this.buf;
      const pooled = this.bufAt >= 0;
      this.ws.write(full.subarray(0, this.fill), () => {
        if (full.length === STAGE && (pooled || this.spare.length < MAX_SPARE)) this.spare.push(full);
      });
      if (nextNeed <= STAGE && this.spare.length > 0) this.setBuf(this.spare.pop()!);
      else this.setBuf(this.fresh(nextNeed));
      this.fill = 0;
    } else if (this.buf.length < nextNeed) {
      this.setBuf(this.fresh(nextNeed));
    }
  }

  /** A new staging buffer of at least `need` bytes: from the pool while it has room, else ordinary. */
  private fresh(need: number): Buffer {
    if (this.buf !== undefined) this.allocated++;
    if (this.pool !== null && need <= STAGE && this.pooled < MAX_POOLED) {
      const v = this.pool.alloc(STAGE);
      if (v !== null) {
        this.pooled++;
        return Buffer.from(v.buffer, v.byteOffset, STAGE);
      }
    }
    return Buffer.allocUnsafe(Math.max(STAGE, need));
  }

  private setBuf(b: Buffer): void {
    this.buf = b;
    this.bufAt = this.pool !== null ? this.pool.addressOf(b) : -1;
  }

  private waitDrain(): Promise<void> {
    this.drain ??= new Promise<void>((resolve, reject) => {
      const done = (e?: Error) => {
        this.ws.off('drain', onDrain);
        this.ws.off('error', onErr);
        this.drain = null;
        if (e) reject(e);
        else resolve();
      };
      const onDrain = () => done();
      const onErr = (e: Error) => done(e);
      this.ws.once('drain', onDrain);
      this.ws.once('error', onErr);
    });
    return this.drain;
  }

  /** Flushes and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handOff(0);
    await new Promise<void>((resolve, reject) => {
      this.ws.end((e?: Error | null) => (e ? reject(e) : resolve()));
    });
    if (this.error) throw this.error;
  }
}
