// Opening a capture file: detects classic pcap (either byte order, micro- or nanosecond) or
// pcapng from the magic number and returns a streaming reader. Everything a reader cannot use is
// an InputError naming the file and where in it; the message says what is wrong.
import { InputError } from '../spec/errors.ts';
import { inputError } from './base-reader.ts';
import { ByteSource } from './byte-source.ts';
import { PCAP_HDR_LEN, PCAP_MAGIC_NS, PCAP_MAGIC_US, PcapReader } from './read-pcap.ts';
import { BT_SHB, PcapngReader } from './read-pcapng.ts';
import type { CaptureReader, CaptureRecord, OpenOptions } from './types.ts';

function swap32(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

/** Formats that are not captures natlab reads, recognised for a better message. */
function describeMagic(b: Buffer): string {
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return ' (gzip-compressed: decompress it first)';
  if (b.length >= 4 && b.readUInt32BE(0) === 0x28b52ffd) return ' (zstd-compressed: decompress it first)';
  if (b.length >= 8 && b.toString('latin1', 0, 8) === 'snoop\0\0\0')
    return ' (Solaris snoop format: convert it with editcap -F pcap)';
  if (b.length >= 4 && (b.readUInt32LE(0) === 0xa1b2cd34 || b.readUInt32BE(0) === 0xa1b2cd34))
    return ' (Kuznetzov modified pcap: convert it with editcap -F pcap)';
  if (
    b.length >= 4 &&
    [...b.subarray(0, Math.min(b.length, 16))].every((c) => c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127))
  )
    return ' (looks like text)';
  return '';
}

/**
 * Opens a capture for streaming. Reads only the file header (and, for pcapng, the interface
 * descriptions that precede the first packet), so `info` is available at once.
 */
export async function openCapture(path: string, opts: OpenOptions = {}): Promise<CaptureReader> {
  let src: ByteSource;
  try {
    src = await ByteSource.open(path, opts.chunkSize);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'ENOENT'
        ? 'no such file'
        : err.code === 'EISDIR' || err.code === 'ENOTFILE'
          ? 'not a regular file'
          : err.code === 'EACCES'
            ? 'permission denied'
            : err.message;
    throw new InputError(`${path}: cannot open: ${why}`, path);
  }
  try {
    if (!(await src.need(4))) {
      if (src.avail === 0) throw inputError(path, 'file header', 'empty file (0 bytes): not a capture');
      throw inputError(path, 'file header', `file is ${src.avail} bytes, too short for a capture file header`);
    }
    const head = src.buf.subarray(src.pos, src.end);
    const le = head.readUInt32LE(0);
    if (le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS || swap32(le) === PCAP_MAGIC_US || swap32(le) === PCAP_MAGIC_NS) {
      if (!(await src.need(PCAP_HDR_LEN))) {
        throw inputError(path, 'file header', `file header is ${src.avail} bytes, needs ${PCAP_HDR_LEN}`);
      }
      const hdr = src.buf.subarray(src.pos, src.pos + PCAP_HDR_LEN);
      src.consume(PCAP_HDR_LEN);
      const r = PcapReader.create(path, src, hdr, opts);
      // pumpNative takes the header fields before reading on and the data only after: safe to reuse.
      src.reuseBuffers = (opts.reuseBuffers ?? false) && opts.parser !== 'pcap-parser';
      if (src.reuseBuffers) src.pool = opts.pool ?? null;
      return r;
    }
    if (le === BT_SHB) return await PcapngReader.create(path, src, opts);
    const hex = head.subarray(0, 4).toString('hex');
    throw inputError(
      path,
      'file header',
      `unknown magic number 0x${hex}: not a pcap or pcapng file${describeMagic(head)}`,
    );
  } catch (e) {
    await src.close();
    throw e;
  }
}

/** Streams the records of a capture file (opens it, yields every record, closes it). */
export async function* readCapture(
  path: string,
  opts: OpenOptions = {},
): AsyncGenerator<CaptureRecord, void, undefined> {
  const r = await openCapture(path, opts);
  try {
    yield* r;
  } finally {
    await r.close();
  }
}
