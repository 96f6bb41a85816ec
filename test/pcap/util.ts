// Shared helpers for the capture tests.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { openCapture, type CaptureInfo, type CaptureRecord, type OpenOptions } from '../../src/pcap/index.ts';

/** The shared corpus lives beside the project: <project>/../shared/corpora. */
export const CORPORA = resolve(import.meta.dirname, '../../../shared/corpora');
export const HAVE_CORPORA = existsSync(join(CORPORA, 'MANIFEST.tsv'));

export function tmpDir(): { dir: string; file(name: string, data?: Uint8Array): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'natlab-pcap-'));
  return {
    dir,
    file(name: string, data?: Uint8Array) {
      const p = join(dir, name);
      if (data) writeFileSync(p, data);
      return p;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ReadAll {
  info: CaptureInfo;
  records: CaptureRecord[];
  warnings: string[];
}

/** Reads a whole capture, copying record data (views may share buffers). */
export async function readAll(path: string, opts: OpenOptions = {}): Promise<ReadAll> {
  const r = await openCapture(path, opts);
  const records: CaptureRecord[] = [];
  for await (const rec of r) records.push({ ...rec, data: Uint8Array.from(rec.data) });
  return { info: r.info, records, warnings: r.warnings };
}

/** Reads until the reader throws; returns what came before and the error (null if none). */
export async function readUntilError(
  path: string,
  opts: OpenOptions = {},
): Promise<{ records: CaptureRecord[]; warnings: string[]; error: Error | null }> {
  const records: CaptureRecord[] = [];
  let warnings: string[] = [];
  try {
    const r = await openCapture(path, opts);
    warnings = r.warnings;
    for await (const rec of r) records.push({ ...rec, data: Uint8Array.from(rec.data) });
  } catch (e) {
    return { records, warnings, error: e as Error };
  }
  return { records, warnings, error: null };
}
