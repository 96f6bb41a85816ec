// Shared memory with a real memmove. Copies into, out of or within a SharedArrayBuffer through
// the TypedArray builtins (set, copyWithin, Buffer.copy) are made with relaxed atomic loads and
// stores — a byte at a time unless source and destination share their alignment: 100–380 ns for
// a 330–1,500-byte frame, against ~20 ns for the same copy in ordinary memory. WebAssembly's
// memory.copy on a shared memory is a plain memmove (8–21 ns for the same frames, the call
// included). A SharedMemoryPool is one shared WebAssembly memory: regions carved from it are
// views over SharedArrayBuffers (the core's workers read and write them in place as any other),
// and `copy` moves bytes between any two of them. Replay keeps its chunks' arenas, the engines'
// output arenas and the output files' staging buffers in one pool (docs/replay.md "Streaming and
// memory"): every frame copy on its path is a memory.copy.

/**
 * (module (import "m" "m" (memory 1 1 shared))
 *   (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2))))
 * The import's limits are only the module's declaration: the memory given at instantiation may
 * be larger (wasm checks it against the declared minimum and maximum, so they are patched below).
 */
function moduleBytes(minPages: number, maxPages: number): Uint8Array {
  const leb = (v: number): number[] => {
    const out: number[] = [];
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v !== 0) b |= 0x80;
      out.push(b);
    } while (v !== 0);
    return out;
  };
  const limits = [0x03, ...leb(minPages), ...leb(maxPages)];
  const imp = [0x01, 0x01, 0x6d, 0x01, 0x6d, 0x02, ...limits];
  const body = [0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfc, 0x0a, 0x00, 0x00, 0x0b];
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types = [0x01, 0x07, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00]; // (i32, i32, i32) -> ()
  const imports = [0x02, imp.length, ...imp]; // "m" "m": a shared memory
  const funcs = [0x03, 0x02, 0x01, 0x00]; // function 0 of type 0
  const exports = [0x07, 0x08, 0x01, 0x04, 0x63, 0x6f, 0x70, 0x79, 0x00, 0x00]; // "copy"
  const code = [0x0a, body.length + 2, 0x01, body.length, ...body];
  return Uint8Array.from([...magic, ...types, ...imports, ...funcs, ...exports, ...code]);
}

/** The few WebAssembly APIs used here (the project's TypeScript libs have no WebAssembly types). */
interface WasmMemory {
  readonly buffer: ArrayBufferLike;
  grow(pages: number): number;
}
interface Wasm {
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: object) => { exports: Record<string, unknown> };
}

const PAGE = 65536;
/** Regions start at multiples of this (frames inside them keep FRAME_ALIGN; cache lines apart). */
const REGION_ALIGN = 64;

export class SharedMemoryPool {
  /** Bytes handed out so far. */
  private top = 0;
  /** Every SharedArrayBuffer the memory has had (one per size: grow() makes a new one). */
  private readonly buffers: SharedArrayBuffer[] = [];
  /** The latest of them (regions are made over it). */
  private current: SharedArrayBuffer;

  private constructor(
    private readonly mem: WasmMemory,
    private readonly maxBytes: number,
    /** memmove(dst, src, n) between addresses of the memory (addressOf). */
    readonly copy: (dst: number, src: number, n: number) => void,
  ) {
    this.current = mem.buffer as unknown as SharedArrayBuffer;
    this.buffers.push(this.current);
  }

  /**
   * A pool of `initialBytes` (more as regions need it, up to `maxBytes`); null where the runtime
   * has no shared WebAssembly memory (callers then use plain SharedArrayBuffers and the builtins).
   */
  static create(initialBytes: number, maxBytes = 1 << 30): SharedMemoryPool | null {
    try {
      const wasm = (globalThis as unknown as { WebAssembly?: Wasm }).WebAssembly;
      if (wasm === undefined) return null;
      const minPages = Math.max(1, Math.ceil(initialBytes / PAGE));
      const maxPages = Math.max(minPages, Math.floor(maxBytes / PAGE));
      const mem = new wasm.Memory({ initial: minPages, maximum: maxPages, shared: true });
      const mod = new wasm.Module(moduleBytes(minPages, maxPages));
      const inst = new wasm.Instance(mod, { m: { m: mem } });
      const copy = inst.exports.copy as (dst: number, src: number, n: number) => void;
      return new SharedMemoryPool(mem, maxPages * PAGE, copy);
    } catch {
      return null;
    }
  }

  /** A zero-filled region of `bytes` bytes (REGION_ALIGN-aligned), or null when the pool is full. */
  alloc(bytes: number): Uint8Array | null {
    const at = (this.top + REGION_ALIGN - 1) & ~(REGION_ALIGN - 1);
    const end = at + Math.max(0, bytes);
    if (end > this.maxBytes) return null;
    if (end > this.current.byteLength) {
      const pages = Math.ceil((Math.max(end, this.current.byteLength * 2) - this.current.byteLength) / PAGE);
      const room = Math.floor((this.maxBytes - this.current.byteLength) / PAGE);
      try {
        this.mem.grow(Math.min(pages, room));
      } catch {
        return null;
      }
      this.current = this.mem.buffer as unknown as SharedArrayBuffer;
      this.buffers.push(this.current);
    }
    this.top = end;
    return new Uint8Array(this.current, at, bytes);
  }

  /** The address of `view`'s first byte in the memory (for copy), or -1 when it is not in the pool. */
  addressOf(view: Uint8Array): number {
    const b = view.buffer;
    if (b === this.current) return view.byteOffset;
    for (let i = 0; i < this.buffers.length; i++) if (this.buffers[i] === b) return view.byteOffset;
    return -1;
  }

  /** Bytes handed out (regions and their alignment). */
  get used(): number {
    return this.top;
  }
}
