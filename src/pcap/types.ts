// Public shapes of the capture reader: one record per captured packet, and what the file says
// about itself (format, byte order, link types, timestamp resolution).
import type { SharedMemoryPool } from '../spec/shared-memory.ts';

/** One captured packet. */
export interface CaptureRecord {
  /** 0-based record number in the file (counts packet records only). */
  index: number;
  /** Seconds since the Unix epoch (may exceed 2^32 in pcapng). */
  tsSec: number;
  /** Nanoseconds within the second, 0..999_999_999. */
  tsNsec: number;
  /** tsSec * 1e6 + floor(tsNsec / 1000): the virtual clock engines use. */
  timeUs: number;
  /** LINKTYPE_* of this packet (per interface in pcapng). */
  linkType: number;
  /** The captured bytes (caplen = data.length). A view: do not keep it across files you mutate. */
  data: Uint8Array;
  /** Length of the packet on the wire (>= data.length unless the file says otherwise). */
  origLen: number;
  /** pcapng: the interface (per section) the packet was captured on; pcap: 0. */
  interfaceId: number;
  /** pcapng: the packet's opt_comment (the first, if several; Wireshark's frame.comment), else null. */
  comment: string | null;
}

/** One capture interface: the file header of a pcap, an Interface Description Block of a pcapng. */
export interface CaptureInterface {
  linkType: number;
  linkTypeName: string;
  /** Snapshot length; 0 = unlimited (pcapng). */
  snapLen: number;
  /** 'us', 'ns', or '10^-N' / '2^-N' for other resolutions. */
  tsResolution: string;
  /** if_name option (pcapng), '' if absent. */
  name: string;
  /** Number of FCS bytes at the end of each frame (pcap link-type field / pcapng if_fcslen), 0 if none. */
  fcsLen: number;
}

export interface CaptureInfo {
  format: 'pcap' | 'pcapng';
  /** Byte order of the (first) section. */
  byteOrder: 'LE' | 'BE';
  /** '2.4' for pcap, '1.0' for pcapng. */
  version: string;
  /** Link type of the first interface (-1 if the file has none yet). */
  linkType: number;
  /** Distinct link types of all interfaces seen so far, in order of appearance. */
  linkTypes: number[];
  linkTypeNames: string[];
  /** Resolution of the first interface: 'us', 'ns', or '10^-N' / '2^-N'. */
  tsResolution: string;
  /** Snapshot length of the first interface (0 = unlimited). */
  snapLen: number;
  /** Interfaces seen so far (pcap: exactly one, from the file header). Grows while reading pcapng. */
  interfaces: CaptureInterface[];
  /** pcapng sections seen so far (pcap: 1). */
  sections: number;
  /** pcapng blocks skipped because natlab does not use them (name resolution, statistics, ...). */
  skippedBlocks: number;
}

export interface OpenOptions {
  /**
   * Records whose captured length exceeds the interface snapshot length are kept with a warning
   * (as Wireshark does; the file header is what is wrong). With strictSnapLen they are an
   * InputError instead. Records above MAX_CAPLEN (256 KiB) are always an InputError.
   */
  strictSnapLen?: boolean;
  /** Read-chunk size in bytes (default 256 KiB). Memory use is O(chunk + largest record). */
  chunkSize?: number;
  /**
   * Classic pcap record decoder: 'native' (default) reads records straight from the byte source;
   * 'pcap-parser' drives the pcap-parser package (slower; kept as a second implementation the
   * tests compare against). pcapng is always decoded by natlab.
   */
  parser?: 'native' | 'pcap-parser';
  /**
   * Classic pcap, native decoder: read into the buffers already consumed instead of fresh ones
   * (fewer full GCs on long reads). Record data is then valid only until the next read call —
   * for bulk consumers that copy what they keep (readInto). Other formats ignore it.
   */
  reuseBuffers?: boolean;
  /**
   * With reuseBuffers: the buffers are read into regions of this shared memory (a bulk consumer
   * copies the records out with its memmove, spec/shared-memory.ts).
   */
  pool?: SharedMemoryPool | null;
}

/**
 * Receives records where they lie in the reader's buffers, with no object per record (bulk
 * consumers: replay). `buf[off, off + capLen)` is the captured data; the reader never writes those
 * bytes again, but a consumer that keeps them past the call should copy them.
 */
export interface RecordSink {
  record(
    index: number,
    tsSec: number,
    tsNsec: number,
    timeUs: number,
    linkType: number,
    buf: Uint8Array,
    off: number,
    capLen: number,
    origLen: number,
  ): void;
}

export interface CaptureReader extends AsyncIterable<CaptureRecord> {
  readonly path: string;
  readonly info: CaptureInfo;
  /**
   * Non-fatal problems found so far (truncated final record, invalid timestamps, caplen above the
   * snapshot length, ...), each naming the record. Complete once iteration has finished.
   */
  readonly warnings: string[];
  /** Records delivered so far. */
  readonly count: number;
  /** Size of the file in bytes, and how much of it has been read so far (for progress bars). */
  readonly fileSize: number;
  readonly bytesRead: number;
  /** Records in batches of at most `max` (fewer awaits per record for bulk consumers). */
  batches(max?: number): AsyncIterable<CaptureRecord[]>;
  /** Next record, or null at the end of the file. */
  next(): Promise<CaptureRecord | null>;
  /**
   * The next record if it is already decoded, else null (then `await next()`, which reads on):
   * bulk readers take a whole decoded chunk with no promise per record.
   */
  nextQueued(): CaptureRecord | null;
  /**
   * Delivers up to `max` records to `sink` (decoded ones first; reads on only when none is): how
   * many, 0 at the end of the file. Errors as next() (records before a fatal error come first).
   * Classic pcap is decoded straight into the sink; other formats go through their records.
   */
  readInto(sink: RecordSink, max: number): Promise<number>;
  /** Releases the file. Idempotent; iteration to the end closes too. */
  close(): Promise<void>;
}
