// Types for pcap-parser 0.2 (CommonJS, untyped). Only what natlab uses.
declare module 'pcap-parser' {
  import type { EventEmitter } from 'node:events';
  export interface PcapPacketHeader {
    timestampSeconds: number;
    timestampMicroseconds: number;
    capturedLength: number;
    originalLength: number;
  }
  export interface PcapGlobalHeader {
    magicNumber: number;
    majorVersion: number;
    minorVersion: number;
    gmtOffset: number;
    timestampAccuracy: number;
    snapshotLength: number;
    linkLayerType: number;
  }
  export interface PcapParser extends EventEmitter {
    on(ev: 'globalHeader', fn: (h: PcapGlobalHeader) => void): this;
    on(ev: 'packetHeader', fn: (h: PcapPacketHeader) => void): this;
    on(ev: 'packet', fn: (p: { header: PcapPacketHeader; data: Buffer }) => void): this;
    on(ev: 'end', fn: () => void): this;
    on(ev: 'error', fn: (e: Error) => void): this;
  }
  /** `input`: a path or a readable stream (anything emitting data/end/error with pause/resume). */
  export function parse(input: string | EventEmitter): PcapParser;
  const _default: { parse: typeof parse };
  export default _default;
}
