// Capture files: streaming pcap/pcapng reader, pcap and pcapng writers.
export type { CaptureInfo, CaptureInterface, CaptureReader, CaptureRecord, OpenOptions } from './types.ts';
export { openCapture, readCapture } from './reader.ts';
export { MAX_CAPLEN } from './base-reader.ts';
export { PCAP_MAGIC_NS, PCAP_MAGIC_US, SUPPORTED_LINKTYPES_TEXT } from './read-pcap.ts';
export { splitTimestamp } from './read-pcapng.ts';
export { PcapWriter, encodePcap, type PcapWriteOptions, type PcapWriteRecord } from './writer.ts';
export {
  PcapngWriter,
  encodePcapng,
  pcapngHeader,
  type PcapngInterfaceSpec,
  type PcapngWriteOptions,
  type PcapngWriteRecord,
} from './pcapng-writer.ts';
