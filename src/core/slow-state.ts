// The state of the one packet the slow path is walking, shared by its parts (hop-walk.ts,
// conntrack.ts, tcp-tracker.ts, nat.ts, nat-port-search.ts, icmp-error.ts, manip.ts): where the
// frame is, what happened to it so far, the conntrack entry being looked at or created (a scratch
// copy, the kernel's `struct nf_conn` under construction), the NAT choice, and what the walk
// learned about the packet's path for the fast path. One instance per worker, reused for every
// packet: no allocation on the slow path either.

import { PacketView } from '../packet/parse.ts';
import { TCPW_WORDS } from './tcpw-words.ts';
import { rd16, rd32 } from '../packet/bytes.ts';
import { PROTO_TCP } from '../packet/constants.ts';

/** Offsets of the TCP and UDP checksum fields in their headers. */
const TCP_CSUM_OFF = 16;
const UDP_CSUM_OFF = 6;

export class SlowState {
  readonly pv = new PacketView();
  /** The packet's clock (ms since the run's time base). */
  now = 0;
  /** The packet's index in its FrameBatch, and the engine's number of that batch (descriptor D_BATCH). */
  pkt = 0;
  batchNo = 0;
  /** The buffer holding the frame being walked (the output arena) and its offset there. */
  buf: Uint8Array = new Uint8Array(0);
  fo = 0;
  /** Where a generated ICMP error for this packet is built (output arena offset). */
  errOff = 0;
  /** True while the frame being walked is an ICMP error the path generated (not the input). */
  gen = false;
  // ---- the packet's result --------------------------------------------------------------------
  fate = 0;
  reason = 0;
  detail = 0;
  ctRes = 0;
  /** Output slots written so far (OUT_SLOTS per packet). */
  nOut = 0;
  // ---- conntrack outcome at the current NAT instance -------------------------------------------
  ctCls = 0;
  /** The entry found (local index) and the direction it matched (KIND_ORIG / KIND_REPLY). */
  cLocal = -1;
  cDir = 0;
  /** A new entry is being built (not yet confirmed). */
  pending = false;
  /** The entry is deleted once this packet has been NATed (an RST before any reply). */
  killAfter = false;
  // ---- scratch entry: orig tuple, reply tuple, meta, expiry, created, TCP flags -----------------
  eOs = 0;
  eOd = 0;
  eOp = 0;
  eRs = 0;
  eRd = 0;
  eRp = 0;
  eMeta = 0;
  eExp = 0;
  eCreated = 0;
  /** S_TCP_FLAGS of the pending entry (its first packet's last_index, last_dir = ORIG). */
  eTcpF = 0;
  /** The pending entry's last_end (a picked-up first ACK in window sets it). */
  eTcpEnd = 0;
  /** The pending entry's TCP window words (layout.ts W_*; tcp-window.ts). */
  readonly eTcpw = new Uint32Array(TCPW_WORDS);
  // ---- get_unique_tuple's result ---------------------------------------------------------------
  us = 0;
  ud = 0;
  up = 0;
  /** The chosen tuple was checked unused (its reply tuple is free): confirm need not look again. */
  uFree = false;
  /** The port search failed on a candidate owned by another worker (W > 1): confirm clashes. */
  uForeign = false;
  /** The POSTROUTING choice was verified free (the final reply tuple). */
  srcFree = false;
  /** confirm() failed for lack of room (probe bound / region), not a clash. */
  confirmFull = false;
  // ---- composed-path tracking (what the fast path may replay) ----------------------------------
  trkOk = false;
  trkNat = 0;
  trkArrivals = 0;
  trkTtl = 0;
  trkEip = 0;
  trkLocal = -1;
  trkKind = 0;
  trkIngress = 0;
  trkEgress = 0;
  // ---- the fast path verified this packet's L4 checksum (a new flow's packet: see HopWalk.run) ---
  /** True: the input frame's L4 checksum verifies (or checksums are off); the words it covered follow. */
  l4Verified = false;
  private vSrc = 0;
  private vDst = 0;
  private vPorts = 0;
  private vCsum = 0;

  /** Remembers the just-parsed input frame's pseudo-header addresses, ports and L4 checksum field. */
  noteVerified(): void {
    const pv = this.pv;
    this.vSrc = pv.src;
    this.vDst = pv.dst;
    this.vPorts = rd32(this.buf, pv.l4Off);
    this.vCsum = pv.l4Csum;
  }

  /**
   * The frame being walked is still the verified input as far as its L4 checksum goes: not a
   * generated packet, and addresses, ports and checksum field unchanged (nothing before the first
   * conntrack lookup rewrites other bytes of a TCP/UDP packet: the IGW, NAT gateways and NAT
   * rewrite exactly these words, a plain host only the TTL).
   */
  l4StillVerified(): boolean {
    if (!this.l4Verified || this.gen) return false;
    const pv = this.pv;
    const b = this.buf;
    const l4 = pv.l4Off;
    return (
      pv.src === this.vSrc &&
      pv.dst === this.vDst &&
      rd32(b, l4) === this.vPorts &&
      rd16(b, l4 + (pv.proto === PROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF)) === this.vCsum
    );
  }

  // ---- a flow-table miss of the fast path for this packet (valid until the first table change) --
  missValid = false;
  missSlot = 0;
  missProto = 0;
  missA = 0;
  missB = 0;
  missPorts = 0;
}
