// The capture of docs/failover.md: 75 s of the app host's traffic (10.0.1.10, the way tcpdump on
// it shows it: one-sided, the far side addressed to its private address), long-lived enough to
// cross a failover — an HTTPS connection with a request every 2 s, an SSH-like session with a
// keystroke every 5 s, DNS queries from one UDP port every 3 s, a ping every second, and a new
// HTTPS connection at 40 s. TCP sequence numbers are coherent. Deterministic. Cold path.

import { buildEthernet, buildIcmpEcho, buildTcp, buildUdp } from '../packet/build.ts';
import { F_ACK, F_FIN, F_PSH, F_SYN } from '../packet/constants.ts';
import { parseIpv4Addr } from '../packet/addr.ts';
import type { PcapWriteRecord } from '../pcap/writer.ts';
import { APP, SCRIPT_EPOCH_US } from './scripted.ts';

const HTTPS = parseIpv4Addr('198.51.100.7');
const SSH = parseIpv4Addr('198.51.100.8');
const DNS = parseIpv4Addr('198.51.100.53');
const PING = parseIpv4Addr('198.51.100.99');
/** Length of the capture, seconds. */
export const FAILOVER_CAPTURE_S = 75;

interface Frame {
  timeUs: number;
  ip: Uint8Array;
}

/** One TCP connection from the app host with coherent sequence numbers. */
class Conn {
  private c: number;
  private s: number;
  constructor(
    private readonly out: Frame[],
    private readonly sport: number,
    private readonly server: number,
    private readonly dport: number,
    isn: number,
  ) {
    this.c = isn;
    this.s = (isn * 7 + 12345) >>> 0;
  }
  private send(fromClient: boolean, atS: number, flags: number, len = 0): void {
    const payload = len > 0 ? new Uint8Array(len).fill(fromClient ? 0x71 : 0x72) : undefined;
    const ip = buildTcp({
      src: fromClient ? APP : this.server,
      dst: fromClient ? this.server : APP,
      sport: fromClient ? this.sport : this.dport,
      dport: fromClient ? this.dport : this.sport,
      seq: fromClient ? this.c : this.s,
      ack: flags & F_ACK ? (fromClient ? this.s : this.c) : 0,
      flags,
      window: 64240,
      payload,
      ttl: fromClient ? 64 : 52,
    });
    const used = len + (flags & (F_SYN | F_FIN) ? 1 : 0);
    if (fromClient) this.c = (this.c + used) >>> 0;
    else this.s = (this.s + used) >>> 0;
    this.out.push({ timeUs: SCRIPT_EPOCH_US + Math.round(atS * 1e6), ip });
  }
  open(atS: number): this {
    this.send(true, atS, F_SYN);
    this.send(false, atS + 0.03, F_SYN | F_ACK);
    this.send(true, atS + 0.0302, F_ACK);
    return this;
  }
  /** Client request, server response 30 ms later, client ACK. */
  exchange(atS: number, req: number, resp: number): void {
    this.send(true, atS, F_PSH | F_ACK, req);
    this.send(false, atS + 0.03, F_PSH | F_ACK, resp);
    this.send(true, atS + 0.0302, F_ACK);
  }
  close(atS: number): void {
    this.send(true, atS, F_FIN | F_ACK);
    this.send(false, atS + 0.03, F_FIN | F_ACK);
    this.send(true, atS + 0.0302, F_ACK);
  }
}

/** The records (Ethernet), in time order. */
export function failoverCaptureRecords(): PcapWriteRecord[] {
  const f: Frame[] = [];
  const https = new Conn(f, 40001, HTTPS, 443, 1_000_000).open(0);
  for (let t = 2; t < 70; t += 2) https.exchange(t, 120, 900);
  https.close(71);
  const ssh = new Conn(f, 40002, SSH, 22, 2_000_000).open(0.5);
  for (let t = 5.5; t < 70; t += 5) ssh.exchange(t, 36, 36);
  ssh.close(72);
  const late = new Conn(f, 40003, HTTPS, 443, 3_000_000).open(40);
  late.exchange(40.1, 120, 900);
  late.close(41);
  for (let k = 0, t = 1; t < 70; k++, t += 3) {
    const q = new Uint8Array(32).fill(0x61);
    q[0] = k;
    f.push({
      timeUs: SCRIPT_EPOCH_US + t * 1e6,
      ip: buildUdp({ src: APP, dst: DNS, sport: 50000, dport: 53, payload: q }),
    });
    f.push({
      timeUs: SCRIPT_EPOCH_US + t * 1e6 + 15_000,
      ip: buildUdp({ src: DNS, dst: APP, sport: 53, dport: 50000, payload: new Uint8Array(48).fill(k), ttl: 57 }),
    });
  }
  for (let seq = 1, t = 0.7; t < 70; seq++, t += 1) {
    const at = SCRIPT_EPOCH_US + Math.round(t * 1e6);
    const payload = new Uint8Array(56).fill(seq & 0xff);
    f.push({ timeUs: at, ip: buildIcmpEcho({ src: APP, dst: PING, id: 7, seq, payload }) });
    f.push({
      timeUs: at + 10_000,
      ip: buildIcmpEcho({ src: PING, dst: APP, id: 7, seq, payload, reply: true, ttl: 57 }),
    });
  }
  f.sort((a, b) => a.timeUs - b.timeUs);
  return f.map((x) => {
    const tsSec = Math.floor(x.timeUs / 1e6);
    return { tsSec, tsNsec: (x.timeUs - tsSec * 1e6) * 1000, data: buildEthernet(x.ip) };
  });
}
