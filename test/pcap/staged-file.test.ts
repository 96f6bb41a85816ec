import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StagedFile } from '../../src/pcap/staged-file.ts';
import { SharedMemoryPool } from '../../src/spec/shared-memory.ts';

describe('StagedFile staging buffers', () => {
  it('a bulk writer (a chunk of records, then one wait) reuses its staging buffers instead of allocating', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natlab-staged-'));
    try {
      const f = await StagedFile.open(join(dir, 'out.bin'), 'test writer');
      const rec = 370; // an IMIX record's size on average
      const perChunk = 4096; // replay's chunk: ~1.5 MB, six staging buffers in flight per wait
      const chunks = 24;
      for (let c = 0; c < chunks; c++) {
        for (let k = 0; k < perChunk; k++) {
          const b = f.reserve(rec);
          b.fill(k & 0xff, f.offset, f.offset + rec);
          f.commit(rec);
        }
        await f.drained();
      }
      await f.close();
      expect((await stat(join(dir, 'out.bin'))).size).toBe(rec * perChunk * chunks);
      // 36 MB through 256 KiB buffers (~140 hand-offs): the buffers of one chunk's writes come back.
      expect(f.allocated).toBeLessThanOrEqual(10);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('StagedFile with a shared memory pool', () => {
  it('stages in regions of the pool, reuses them, and writes what was staged', async () => {
    const pool = SharedMemoryPool.create(1 << 20, 64 << 20)!;
    const dir = await mkdtemp(join(tmpdir(), 'natlab-staged-'));
    try {
      const f = await StagedFile.open(join(dir, 'out.bin'), 'test writer', pool);
      expect(f.bufAt).toBeGreaterThanOrEqual(0);
      const rec = 370;
      const total = 4096 * 8;
      for (let k = 0; k < total; k++) {
        const b = f.reserve(rec);
        expect(pool.addressOf(b)).toBe(f.bufAt);
        b.fill(k & 0xff, f.offset, f.offset + rec);
        f.commit(rec);
        if ((k & 4095) === 4095) await f.drained();
      }
      await f.close();
      const got = await readFile(join(dir, 'out.bin'));
      expect(got.length).toBe(rec * total);
      for (let k = 0; k < total; k += 997) expect(got[k * rec + 5]).toBe(k & 0xff);
      // At most its share of the pool (16 buffers), whatever the file's size.
      expect(pool.used).toBeLessThanOrEqual(16 * 256 * 1024 + 64);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
