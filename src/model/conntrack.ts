// One NAT instance's connection tracking table and nf_conntrack_in(): tuple extraction, lookup
// (resolve_normal_ct), entry allocation with early drop (init_conntrack / __nf_conntrack_alloc /
// early_drop), the per-protocol trackers (nf_conntrack_tcp_packet, nf_conntrack_udp_packet,
// nf_conntrack_icmp_packet, generic) and ICMP errors matched through their embedded header
// (nf_conntrack_icmpv4_error / nf_conntrack_inet_error). docs/semantics.md §3–§7; LNS §1, §3–§6.
// Optimised for being obviously right: Maps, plain objects, one packet at a time.

import {
  ICMP_ADDRESS,
  ICMP_ECHO,
  ICMP_INFO_REQUEST,
  ICMP_TIMESTAMP,
  PROTO_ICMP,
  PROTO_TCP,
  PROTO_UDP,
  isIcmpErrorType,
} from '../packet/constants.ts';
import {
  type PacketView,
  PARSE_BAD_TCP_DATA_OFFSET,
  PARSE_BAD_UDP_LENGTH,
  PARSE_ICMP_ERROR_TOO_SHORT,
  PARSE_ICMP_INNER_MALFORMED,
  PARSE_OK,
  PARSE_TRUNCATED_L4,
  PARSE_TRUNCATED_TCP_OPTIONS,
} from '../packet/parse.ts';
import { verifyL4Checksum } from '../packet/checksum.ts';
import { CT_ESTABLISHED, CT_INVALID, CT_NEW, CT_RELATED } from '../spec/reasons.ts';
import type { ConntrackSettings } from '../spec/scenario.ts';
import type { ConntrackTimeouts } from '../spec/timeouts.ts';
import { UDP_STREAM_AFTER_S } from '../spec/timeouts.ts';
import { copyTuple, invertTuple, tupleKey, tupleText, type Tuple } from './tuple.ts';
import {
  TCP_ACK_SET,
  TCP_FIN_SET,
  TCP_CLASS_NAMES,
  TCP_CLOSE,
  TCP_CLOSE_WAIT,
  TCP_ESTABLISHED,
  TCP_FIN_WAIT,
  TCP_IG,
  TCP_IV,
  TCP_LAST_ACK,
  TCP_NONE,
  TCP_NONE_SET,
  TCP_RST_SET,
  TCP_STATE_NAMES,
  TCP_SYN_RECV,
  TCP_SYN_SENT,
  TCP_SYN_SENT2,
  TCP_SYN_SET,
  TCP_SYNACK_SET,
  TCP_TIME_WAIT,
  tcpFlagsValid,
  tcpPacketClass,
  tcpTransition,
} from './tcp-state.ts';
import { rd16 } from '../packet/bytes.ts';
import {
  TF_CLOSE_INIT,
  TF_DATA_UNACKNOWLEDGED,
  TF_MAXACK_SET,
  TF_SACK_PERM,
  TF_WINDOW_SCALE,
  type TcpWindowShared,
  newDirState,
  resetDirState,
  segmentEnd,
  seqBefore,
  tcpInWindow,
  tcpOptions,
  tcpWindowNew,
} from './tcp-window.ts';
import { DEFAULT_TCP_MAX_RETRANS } from '../spec/scenario.ts';

export const DIR_ORIG = 0;
export const DIR_REPLY = 1;

/**
 * Per-connection TCP tracker memory (struct ip_ct_tcp): the state, each direction's window data
 * (`seen`, tcp-window.ts; its flags hold CLOSE_INIT, MAXACK_SET, DATA_UNACKNOWLEDGED, BE_LIBERAL,
 * WINDOW_SCALE, SACK_PERM) and the last_* fields shared by both directions.
 */
export interface TcpInfo extends TcpWindowShared {
  /** last_index of the last accepted or ignored packet (last_dir / last_end: TcpWindowShared). */
  lastIndex: number;
  /** last_flags / last_wscale of an ignored ORIG SYN: its WINDOW_SCALE / SACK_PERM options. */
  lastFlags: number;
  lastWscale: number;
  /** IP_CT_TCP_SIMULTANEOUS_OPEN (set on entering SYN_SENT2; cleared by an ignored ORIG SYN). */
  simultaneousOpen: boolean;
  /** IP_CT_EXP_CHALLENGE_ACK: an ORIG SYN was ignored in LAST_ACK (RFC 5961). */
  expChallengeAck: boolean;
  /** Picked up mid-stream (nf_conntrack_tcp_loose). */
  loose: boolean;
}

export interface CtEntry {
  /** Allocation order (early drop evicts the oldest non-ASSURED entry). */
  id: number;
  proto: number;
  /** [ORIGINAL, REPLY] tuples (the REPLY tuple is replaced by NAT, nf_conntrack_alter_reply). */
  tuples: [Tuple, Tuple];
  confirmed: boolean;
  /** Removed from the table (killed, expired, evicted); a packet holding it still finishes. */
  dead: boolean;
  seenReply: boolean;
  assured: boolean;
  /** IPS_SRC_NAT / IPS_DST_NAT: the manipulation changed the tuple. */
  srcNat: boolean;
  dstNat: boolean;
  /** IPS_SRC_NAT_DONE / IPS_DST_NAT_DONE: nf_nat_setup_info ran for that manip type. */
  srcNatDone: boolean;
  dstNatDone: boolean;
  /** Which target set up each mapping ('MASQUERADE', 'SNAT', 'DNAT', 'null binding'), for trace. */
  srcNatBy: string;
  dstNatBy: string;
  /** Absolute expiry (virtual ms): dead iff nowMs >= expiresMs. */
  expiresMs: number;
  /** UDP stream_ts (first packet + 2 s). */
  udpStreamMs: number;
  tcp: TcpInfo;
}

export interface CtLookup {
  entry: CtEntry;
  dir: number;
}

function srcKey(proto: number, src: number, sport: number): string {
  return `${proto}|${src}|${sport}`;
}

function newTcpInfo(): TcpInfo {
  return {
    state: TCP_NONE,
    seen: [newDirState(), newDirState()],
    lastDir: DIR_ORIG,
    lastIndex: TCP_NONE_SET,
    lastSeq: 0,
    lastAck: 0,
    lastEnd: 0,
    lastWin: 0,
    retrans: 0,
    lastFlags: 0,
    lastWscale: 0,
    simultaneousOpen: false,
    expChallengeAck: false,
    loose: false,
  };
}

/** The table of one NAT instance. Only confirmed, live entries are in it. */
export class ConntrackTable {
  /** Both tuples of every confirmed entry → (entry, direction). */
  private readonly byTuple = new Map<string, CtLookup>();
  /** Confirmed entries in allocation order. */
  private readonly entries = new Map<number, CtEntry>();
  /** nf_nat_bysource: confirmed entries by (proto, original source address, source port/id). */
  private readonly bySrc = new Map<string, Set<CtEntry>>();
  private nextId = 1;
  /** Lower bound of every entry's expiry (lets expire() skip the scan). */
  private minExpiryMs = Infinity;

  constructor(readonly settings: ConntrackSettings) {}

  get count(): number {
    return this.entries.size;
  }

  /** Confirmed live entries in allocation order. */
  list(): CtEntry[] {
    return [...this.entries.values()];
  }

  /** __nf_conntrack_find_get: exact match on either tuple of a confirmed live entry. */
  find(proto: number, t: Tuple): CtLookup | null {
    return this.byTuple.get(tupleKey(proto, t)) ?? null;
  }

  /** Removes every entry with nowMs >= expiresMs (lookups must never see them). */
  expire(nowMs: number): void {
    if (nowMs < this.minExpiryMs) return;
    let min = Infinity;
    for (const e of [...this.entries.values()]) {
      if (nowMs >= e.expiresMs) this.remove(e);
      else if (e.expiresMs < min) min = e.expiresMs;
    }
    this.minExpiryMs = min;
  }

  /** nf_ct_refresh: the idle timer restarts at nowMs. */
  refresh(e: CtEntry, nowMs: number, timeoutS: number): void {
    e.expiresMs = nowMs + timeoutS * 1000;
    if (e.expiresMs < this.minExpiryMs) this.minExpiryMs = e.expiresMs;
  }

  /**
   * init_conntrack → __nf_conntrack_alloc: a new unconfirmed entry, or null when the table is
   * full and early_drop finds no non-ASSURED entry to evict (natlab evicts the oldest-created one;
   * the kernel scans 8 buckets from the new tuple's hash — documented difference).
   */
  alloc(proto: number, orig: Tuple, reply: Tuple): { entry: CtEntry | null; evicted: CtEntry | null } {
    let evicted: CtEntry | null = null;
    if (this.entries.size + 1 > this.settings.max) {
      for (const e of this.entries.values()) {
        if (!e.assured) {
          evicted = e;
          break;
        }
      }
      if (!evicted) return { entry: null, evicted: null };
      this.remove(evicted);
    }
    const entry: CtEntry = {
      id: this.nextId++,
      proto,
      tuples: [copyTuple(orig), copyTuple(reply)],
      confirmed: false,
      dead: false,
      seenReply: false,
      assured: false,
      srcNat: false,
      dstNat: false,
      srcNatDone: false,
      dstNatDone: false,
      srcNatBy: '',
      dstNatBy: '',
      expiresMs: 0,
      udpStreamMs: 0,
      tcp: newTcpInfo(),
    };
    return { entry, evicted };
  }

  /**
   * __nf_conntrack_confirm: inserts both tuples. A clash (either tuple already present: the
   * reply tuple chosen by NAT is taken) returns false and the entry is discarded.
   */
  confirm(e: CtEntry): boolean {
    const k0 = tupleKey(e.proto, e.tuples[0]);
    const k1 = tupleKey(e.proto, e.tuples[1]);
    if (this.byTuple.has(k0) || this.byTuple.has(k1) || k0 === k1) {
      e.dead = true;
      return false;
    }
    e.confirmed = true;
    this.byTuple.set(k0, { entry: e, dir: DIR_ORIG });
    this.byTuple.set(k1, { entry: e, dir: DIR_REPLY });
    this.entries.set(e.id, e);
    const sk = srcKey(e.proto, e.tuples[0].src, e.tuples[0].sport);
    let set = this.bySrc.get(sk);
    if (!set) this.bySrc.set(sk, (set = new Set()));
    set.add(e);
    if (e.expiresMs < this.minExpiryMs) this.minExpiryMs = e.expiresMs;
    return true;
  }

  /** nf_ct_kill / nf_ct_delete / expiry. */
  remove(e: CtEntry): void {
    e.dead = true;
    if (!e.confirmed || !this.entries.has(e.id)) return;
    this.entries.delete(e.id);
    this.byTuple.delete(tupleKey(e.proto, e.tuples[0]));
    this.byTuple.delete(tupleKey(e.proto, e.tuples[1]));
    const sk = srcKey(e.proto, e.tuples[0].src, e.tuples[0].sport);
    const set = this.bySrc.get(sk);
    set?.delete(e);
    if (set && set.size === 0) this.bySrc.delete(sk);
  }

  /**
   * nf_nat_used_tuple: is the candidate (the packet as it would look after NAT, orig direction)
   * unusable because another entry already has its inverse — the would-be reply tuple — as one
   * of its tuples?
   */
  isTupleUsed(proto: number, candidate: Tuple, ignore: CtEntry): boolean {
    const reply = invertTuple(proto, candidate);
    if (!reply) return false;
    const hit = this.byTuple.get(tupleKey(proto, reply));
    return hit !== undefined && hit.entry !== ignore;
  }

  /**
   * The nf_nat_bysource chain of find_appropriate_src: confirmed entries with the same protocol,
   * original source address and source port (ICMP: id), newest first (hlist_add_head_rcu).
   */
  bySource(proto: number, src: number, sport: number): CtEntry[] {
    const set = this.bySrc.get(srcKey(proto, src, sport));
    if (!set) return [];
    return [...set].filter((e) => e.srcNatDone).sort((a, b) => b.id - a.id);
  }
}

// --- nf_conntrack_in ---------------------------------------------------------------------------

/** Where conntrack runs: PREROUTING (received packets) or OUTPUT (locally generated). */
export const HOOK_PRE = 0;
export const HOOK_OUT = 1;

export interface CtResult {
  /** false = drop the packet (table full). */
  accept: boolean;
  /** The entry attached to the packet, or null: INVALID (no conntrack, no NAT). */
  entry: CtEntry | null;
  dir: number;
  /** CT_NEW / CT_ESTABLISHED / CT_RELATED / CT_INVALID. */
  ctinfo: number;
  /** Human note for trace: why, and what changed. */
  note: string;
  /** An entry the packet's allocation evicted (early drop), for trace. */
  evicted: CtEntry | null;
}

function invalid(note: string, evicted: CtEntry | null = null): CtResult {
  return { accept: true, entry: null, dir: DIR_ORIG, ctinfo: CT_INVALID, note, evicted };
}

/** nf_ct_get_tuple for the packet itself: ports need 4 L4 bytes, ICMP its 8-byte header. */
function packetTuple(pkt: Uint8Array, pv: PacketView): Tuple | null {
  const o = pv.l4Off;
  switch (pv.proto) {
    case PROTO_TCP:
    case PROTO_UDP:
      if (pv.l4Len < 4) return null;
      return { src: pv.src, dst: pv.dst, sport: rd16(pkt, o), dport: rd16(pkt, o + 2) };
    case PROTO_ICMP:
      if (pv.l4Len < 8) return null;
      return { src: pv.src, dst: pv.dst, sport: rd16(pkt, o + 4), dport: (pkt[o] << 8) | pkt[o + 1] };
    default:
      return { src: pv.src, dst: pv.dst, sport: 0, dport: 0 };
  }
}

/** The quoted packet's tuple (nf_ct_get_tuplepr on the embedded header), or null. */
export function innerTuple(pkt: Uint8Array, pv: PacketView): { proto: number; tuple: Tuple } | null {
  if (pv.status === PARSE_ICMP_ERROR_TOO_SHORT || pv.status === PARSE_ICMP_INNER_MALFORMED) return null;
  if (pv.status !== PARSE_OK || !pv.isIcmpError) return null;
  const io = pv.innerOff;
  // ipv4_get_l4proto: an inner non-first fragment has no ports.
  if ((rd16(pkt, io + 6) & 0x1fff) !== 0) return null;
  const l4 = pv.innerL4Off;
  switch (pv.innerProto) {
    case PROTO_TCP:
    case PROTO_UDP:
      return {
        proto: pv.innerProto,
        tuple: { src: pv.innerSrc, dst: pv.innerDst, sport: rd16(pkt, l4), dport: rd16(pkt, l4 + 2) },
      };
    case PROTO_ICMP:
      return {
        proto: PROTO_ICMP,
        tuple: { src: pv.innerSrc, dst: pv.innerDst, sport: rd16(pkt, l4 + 4), dport: (pkt[l4] << 8) | pkt[l4 + 1] },
      };
    default:
      return { proto: pv.innerProto, tuple: { src: pv.innerSrc, dst: pv.innerDst, sport: 0, dport: 0 } };
  }
}

/**
 * nf_conntrack_in(): classify the packet and update (or create) its entry. `pkt`/`pv` is the
 * packet as it arrives at the hook (IPv4 at offset 0, parsed; L4-level parse problems allowed).
 * A new entry is returned unconfirmed: the caller confirms it at POSTROUTING/INPUT or drops it.
 */
export function conntrackIn(
  table: ConntrackTable,
  pkt: Uint8Array,
  pv: PacketView,
  hook: number,
  nowMs: number,
): CtResult {
  const s = table.settings;
  const verifyChecksums = s.checksum && hook === HOOK_PRE;

  // nf_conntrack_handle_icmp → nf_conntrack_icmpv4_error (before any lookup).
  if (pv.proto === PROTO_ICMP) {
    if (pv.l4Len < 8) return invalid('icmp: short packet');
    if (verifyChecksums && !verifyL4Checksum(pkt, pv)) return invalid('icmp: bad checksum');
    const type = pkt[pv.l4Off];
    if (type > 18) return invalid(`icmp: invalid type ${type}`);
    if (isIcmpErrorType(type)) return icmpErrorIn(table, pkt, pv);
  }

  const tuple = packetTuple(pkt, pv);
  if (!tuple) return invalid(`${protoWord(pv.proto)}: header too short for a tuple`);

  for (let repeat = 0; ; repeat++) {
    // resolve_normal_ct
    let hit = table.find(pv.proto, tuple);
    let evicted: CtEntry | null = null;
    let isNew = false;
    if (!hit) {
      const reply = invertTuple(pv.proto, tuple);
      if (!reply) return invalid(`icmp: type ${tuple.dport >>> 8} cannot be tracked (not invertible)`);
      const a = table.alloc(pv.proto, tuple, reply);
      if (!a.entry)
        return {
          accept: false,
          entry: null,
          dir: DIR_ORIG,
          ctinfo: CT_INVALID,
          note: 'table full, no non-ASSURED entry to early-drop',
          evicted: null,
        };
      evicted = a.evicted;
      hit = { entry: a.entry, dir: DIR_ORIG };
      isNew = true;
    }
    const { entry, dir } = hit;
    const ctinfo = dir === DIR_REPLY ? CT_ESTABLISHED : entry.seenReply ? CT_ESTABLISHED : CT_NEW;

    let r: TrackResult;
    switch (pv.proto) {
      case PROTO_TCP:
        r = tcpPacket(table, entry, dir, isNew, pkt, pv, verifyChecksums, nowMs);
        break;
      case PROTO_UDP:
        r = udpPacket(table, entry, isNew, pkt, pv, verifyChecksums, nowMs);
        break;
      case PROTO_ICMP:
        r = icmpPacket(table, entry, nowMs);
        break;
      default:
        r = { verdict: 'accept', note: 'generic' };
        table.refresh(entry, nowMs, s.timeouts.generic);
        break;
    }
    if (r.verdict === 'repeat' && repeat === 0) continue;
    if (r.verdict === 'invalid' || r.verdict === 'repeat') {
      if (isNew) entry.dead = true;
      return invalid(r.note, evicted);
    }
    // nf_conntrack_in: IPS_SEEN_REPLY after the tracker accepted the first reply packet.
    if (dir === DIR_REPLY) entry.seenReply = true;
    const base = `${isNew ? 'new entry' : dir === DIR_REPLY ? 'reply direction' : 'original direction'} ${tupleText(entry.proto, entry.tuples[dir])}`;
    return { accept: true, entry, dir, ctinfo, note: r.note ? `${base}; ${r.note}` : base, evicted };
  }
}

function protoWord(p: number): string {
  return p === PROTO_TCP ? 'tcp' : p === PROTO_UDP ? 'udp' : p === PROTO_ICMP ? 'icmp' : `proto ${p}`;
}

/** nf_conntrack_inet_error: match an ICMP error through its quoted packet. */
function icmpErrorIn(table: ConntrackTable, pkt: Uint8Array, pv: PacketView): CtResult {
  const inner = innerTuple(pkt, pv);
  if (!inner) return invalid('icmp error: quoted packet unusable');
  const inv = invertTuple(inner.proto, inner.tuple);
  if (!inv) return invalid('icmp error: quoted packet not invertible');
  const hit = table.find(inner.proto, inv);
  if (!hit) return invalid(`icmp error: no entry for quoted ${tupleText(inner.proto, inner.tuple)}`);
  // "outer daddr != inner": the error must go where the matched tuple's packets go.
  if (pv.dst !== hit.entry.tuples[hit.dir].dst) return invalid('icmp error: outer daddr != inner');
  return {
    accept: true,
    entry: hit.entry,
    dir: hit.dir,
    ctinfo: CT_RELATED,
    note: `related to ${tupleText(hit.entry.proto, hit.entry.tuples[0])} (${hit.dir === DIR_REPLY ? 'reply' : 'original'} direction); entry not refreshed`,
    evicted: null,
  };
}

interface TrackResult {
  verdict: 'accept' | 'invalid' | 'repeat';
  note: string;
}

// --- TCP (nf_conntrack_proto_tcp.c) ---------------------------------------------------------------

function tcpStateTimeout(t: ConntrackTimeouts, state: number): number {
  switch (state) {
    case TCP_SYN_SENT:
    case TCP_SYN_SENT2:
      return t.tcpSynSent;
    case TCP_SYN_RECV:
      return t.tcpSynRecv;
    case TCP_ESTABLISHED:
      return t.tcpEstablished;
    case TCP_FIN_WAIT:
      return t.tcpFinWait;
    case TCP_CLOSE_WAIT:
      return t.tcpCloseWait;
    case TCP_LAST_ACK:
      return t.tcpLastAck;
    case TCP_TIME_WAIT:
      return t.tcpTimeWait;
    case TCP_CLOSE:
      return t.tcpClose;
    default:
      return t.tcpSynSent;
  }
}

/** tcp_error: header sanity, checksum (PREROUTING only), flag combination. */
function tcpError(pkt: Uint8Array, pv: PacketView, verifyChecksums: boolean): string | null {
  if (pv.status === PARSE_TRUNCATED_L4) return 'tcp: truncated header';
  if (pv.status === PARSE_BAD_TCP_DATA_OFFSET || pv.status === PARSE_TRUNCATED_TCP_OPTIONS)
    return 'tcp: truncated/bad data offset';
  if (verifyChecksums && !verifyL4Checksum(pkt, pv)) return 'tcp: bad checksum';
  if (!tcpFlagsValid(pv.tcpFlags)) return 'tcp: invalid flag combination';
  return null;
}

function tcpPacket(
  table: ConntrackTable,
  e: CtEntry,
  dir: number,
  isNew: boolean,
  pkt: Uint8Array,
  pv: PacketView,
  verifyChecksums: boolean,
  nowMs: number,
): TrackResult {
  const err = tcpError(pkt, pv, verifyChecksums);
  if (err) return { verdict: 'invalid', note: err };
  const settings = table.settings;
  const t = settings.timeouts;
  const tcp = e.tcp;
  const index = tcpPacketClass(pv.tcpFlags);

  // tcp_new: only SYN → SYN_SENT, or (nf_conntrack_tcp_loose) ACK → picked-up ESTABLISHED.
  if (isNew) {
    const first = tcpTransition(DIR_ORIG, index, TCP_NONE);
    if (first === TCP_IV)
      return { verdict: 'invalid', note: `tcp: invalid new (${TCP_CLASS_NAMES[index]} with no entry)` };
    if (first !== TCP_SYN_SENT) {
      if (!settings.tcpLoose)
        return { verdict: 'invalid', note: 'tcp: mid-stream packet with no entry (tcp_loose off)' };
      tcp.loose = true;
    }
    tcp.state = TCP_NONE;
    tcpWindowNew(tcp, pkt, pv, first === TCP_SYN_SENT);
  }

  let oldState = tcp.state;
  let newState = tcpTransition(dir, index, oldState);
  let note = '';

  // The special cases of nf_conntrack_tcp_packet's switch (new_state).
  if (newState === TCP_SYN_SENT && oldState >= TCP_TIME_WAIT) {
    // Re-open from TIME_WAIT / CLOSE: only if a side had closed with FIN, or the last packet in
    // this direction was an RST; otherwise the SYN is ignored.
    if (
      (tcp.seen[0].flags | tcp.seen[1].flags) & TF_CLOSE_INIT ||
      (tcp.lastDir === dir && tcp.lastIndex === TCP_RST_SET)
    ) {
      table.remove(e);
      return { verdict: 'repeat', note: `tcp: SYN re-opens a ${TCP_STATE_NAMES[oldState]} entry` };
    }
    newState = TCP_IG;
  }
  if (newState === TCP_IG) {
    if (index === TCP_SYNACK_SET && tcp.lastIndex === TCP_SYN_SET && tcp.lastDir !== dir && pv.tcpAck === tcp.lastEnd) {
      // The SYN/ACK answers a SYN we ignored: both ends are in sync, get in sync with them from
      // the ignored SYN's annotations (its direction re-initialised, this direction reset).
      oldState = TCP_SYN_SENT;
      newState = TCP_SYN_RECV;
      const l = tcp.seen[tcp.lastDir];
      l.end = tcp.lastEnd;
      l.maxend = tcp.lastEnd;
      l.maxwin = tcp.lastWin === 0 ? 1 : tcp.lastWin;
      l.scale = tcp.lastWscale;
      tcp.expChallengeAck = false;
      l.flags = tcp.lastFlags;
      resetDirState(tcp.seen[dir]);
      note = 'SYN/ACK answers the ignored SYN: re-synced; ';
    } else {
      tcp.lastIndex = index;
      tcp.lastDir = dir;
      tcp.lastSeq = pv.tcpSeq;
      tcp.lastEnd = segmentEnd(pv);
      tcp.lastWin = pv.tcpWindow;
      if (index === TCP_SYN_SET && dir === DIR_ORIG) {
        // The SYN's options are annotated (last_flags reset: the simultaneous-open mark goes too).
        const o = newDirState();
        tcpOptions(pkt, pv, o);
        tcp.lastFlags = o.flags & (TF_WINDOW_SCALE | TF_SACK_PERM);
        tcp.lastWscale = o.flags & TF_WINDOW_SCALE ? o.scale : 0;
        tcp.simultaneousOpen = false;
        tcp.expChallengeAck = oldState === TCP_LAST_ACK;
      }
      if (oldState === TCP_SYN_SENT && index === TCP_ACK_SET && dir === DIR_REPLY) tcp.lastAck = pv.tcpAck;
      return {
        verdict: 'accept',
        note: `tcp ${TCP_STATE_NAMES[oldState]}: ${TCP_CLASS_NAMES[index]} ignored (state and timer unchanged)`,
      };
    }
  }
  if (newState === TCP_IV) {
    return {
      verdict: 'invalid',
      note: `tcp: ${TCP_CLASS_NAMES[index]} invalid in ${TCP_STATE_NAMES[oldState]} (${dir === DIR_REPLY ? 'reply' : 'original'})`,
    };
  }
  if (
    newState === TCP_TIME_WAIT &&
    oldState === TCP_LAST_ACK &&
    index === TCP_ACK_SET &&
    tcp.lastDir !== dir &&
    tcp.lastIndex === TCP_SYN_SET &&
    tcp.expChallengeAck
  ) {
    tcp.expChallengeAck = false;
    return { verdict: 'accept', note: 'tcp: RFC 5961 challenge ACK ignored (state unchanged)' };
  }
  if (newState === TCP_SYN_SENT2) tcp.simultaneousOpen = true;
  if (newState === TCP_SYN_RECV && dir === DIR_REPLY && index === TCP_ACK_SET && tcp.simultaneousOpen)
    newState = TCP_ESTABLISHED;
  // case TCP_CONNTRACK_CLOSE: the RST checks. `skipWindow` = the kernel's `goto in_window`.
  let skipWindow = false;
  if (newState === TCP_CLOSE && index === TCP_RST_SET) {
    const rst = rstCheck(e, tcp, dir, oldState, pv, settings.tcpIgnoreInvalidRst === true);
    if (rst.verdict === 'invalid') return { verdict: 'invalid', note: rst.note };
    if (rst.verdict === 'keep') {
      newState = oldState;
      note = `${rst.note}; `;
    }
    skipWindow = rst.verdict === 'in-window';
  }
  if (!skipWindow) {
    // (tcp_in_window reads the stored state: a re-sync's SYN_SENT is only the transition's origin.)
    const w = tcpInWindow(tcp, dir, index, pkt, pv, settings.tcpBeLiberal === true);
    if (w.verdict === 'ignore')
      return {
        verdict: 'accept',
        note: `tcp ${TCP_STATE_NAMES[oldState]}: ${w.why}: ignored (state and timer unchanged)`,
      };
    if (w.verdict === 'invalid') {
      const shrunk = handleInvalid(table, e, dir, index, nowMs);
      return { verdict: 'invalid', note: `tcp: out of window: ${w.why}${shrunk}` };
    }
  }

  tcp.lastIndex = index;
  tcp.lastDir = dir;
  tcp.state = newState;
  if (oldState !== newState && newState === TCP_FIN_WAIT) tcp.seen[dir].flags |= TF_CLOSE_INIT;
  note +=
    oldState === TCP_NONE
      ? `tcp ${TCP_STATE_NAMES[newState]}${tcp.loose ? ' (picked up mid-stream)' : ''}`
      : `tcp ${TCP_STATE_NAMES[oldState]} → ${TCP_STATE_NAMES[newState]}`;

  // The timeout (in this order): max_retrans reached, RST, unacknowledged data, zero window.
  const stateTo = tcpStateTimeout(t, newState);
  const maxRetrans = settings.tcpMaxRetrans ?? DEFAULT_TCP_MAX_RETRANS;
  let timeout: number;
  if (tcp.retrans >= maxRetrans && stateTo > t.tcpMaxRetrans) {
    timeout = t.tcpMaxRetrans;
    note += `; ${tcp.retrans} retransmissions`;
  } else if (index === TCP_RST_SET) timeout = t.tcpClose;
  else if ((tcp.seen[0].flags | tcp.seen[1].flags) & TF_DATA_UNACKNOWLEDGED && stateTo > t.tcpUnacknowledged) {
    timeout = t.tcpUnacknowledged;
    note += '; unacknowledged data';
  } else if (tcp.lastWin === 0 && stateTo > t.tcpMaxRetrans) {
    timeout = t.tcpMaxRetrans;
    note += '; zero window';
  } else timeout = stateTo;
  if (!e.seenReply) {
    if (index === TCP_RST_SET && !isNew) {
      // "If only reply is a RST, we can consider ourselves not to have an established
      // connection": the entry is deleted at once (the packet still goes through, NATed).
      table.remove(e);
      return { verdict: 'accept', note: `${note}; RST before any reply: entry deleted` };
    }
    if (index === TCP_SYN_SET && oldState === TCP_SYN_SENT) {
      return { verdict: 'accept', note: `${note}; SYN retransmission: timer not renewed` };
    }
    if (newState === TCP_ESTABLISHED && timeout > t.tcpUnacknowledged) timeout = t.tcpUnacknowledged;
  } else if (
    !e.assured &&
    (oldState === TCP_SYN_RECV || oldState === TCP_ESTABLISHED) &&
    newState === TCP_ESTABLISHED
  ) {
    e.assured = true;
    note += '; ASSURED';
  }
  table.refresh(e, nowMs, timeout);
  return { verdict: 'accept', note: `${note}; timeout ${timeout} s` };
}

/**
 * nf_tcp_handle_invalid: an out-of-window FIN or RST on an ASSURED entry answering the other
 * side's FIN/RST shortens a timeout of 120 s or more to `tcpUnacknowledged`; any other such
 * FIN/RST is remembered as the last packet (last_dir / last_index).
 */
function handleInvalid(table: ConntrackTable, e: CtEntry, dir: number, index: number, nowMs: number): string {
  if (!e.assured || (index !== TCP_RST_SET && index !== TCP_FIN_SET)) return '';
  const tcp = e.tcp;
  if (tcp.lastDir !== dir && (tcp.lastIndex === TCP_FIN_SET || tcp.lastIndex === TCP_RST_SET)) {
    const remainingMs = e.expiresMs - nowMs;
    const unackS = table.settings.timeouts.tcpUnacknowledged;
    if (remainingMs < 120_000 || remainingMs <= unackS * 1000) return '';
    table.refresh(e, nowMs, unackS);
    return ` (answers a ${TCP_CLASS_NAMES[tcp.lastIndex]}: timeout lowered to ${unackS} s)`;
  }
  tcp.lastIndex = index;
  tcp.lastDir = dir;
  return '';
}

/**
 * nf_conntrack_tcp_packet, `case TCP_CONNTRACK_CLOSE` for an RST (LNS §4): 'invalid' ("invalid
 * rst": seq below the other direction's highest ACK), 'keep' (an in-window RST whose seq is not
 * exactly the expected one on an established connection: the state stays, so the endpoint's
 * challenge ACK can follow — RFC 5961), 'in-window' (accepted without the window check: `goto
 * in_window`), or 'close' (the ordinary path: tcp_in_window, then CLOSE).
 */
function rstCheck(
  e: CtEntry,
  tcp: TcpInfo,
  dir: number,
  oldState: number,
  pv: PacketView,
  ignoreInvalidRst: boolean,
): { verdict: 'invalid' | 'keep' | 'in-window' | 'close'; note: string } {
  // tcp_can_early_drop: a closing entry's fields may be stale; skip the checks.
  if (oldState >= TCP_FIN_WAIT && oldState <= TCP_CLOSE) return { verdict: 'in-window', note: '' };
  const other = 1 - dir;
  const seq = pv.tcpSeq;
  if (tcp.seen[other].flags & TF_MAXACK_SET && tcp.lastIndex !== TCP_SYN_SET) {
    const established = oldState === TCP_ESTABLISHED && e.assured; // nf_conntrack_tcp_established
    const expected = tcp.seen[other].maxack;
    if (seq === 0 && !established) return { verdict: 'close', note: '' };
    if (seqBefore(seq, expected) && !ignoreInvalidRst)
      return { verdict: 'invalid', note: `tcp: invalid rst (seq ${seq} before the expected ${expected})` };
    if (!established || seq === expected) return { verdict: 'close', note: '' };
    // An RST right after our own last data segment ("part of a train") is exact too.
    if (tcp.lastIndex === TCP_ACK_SET && tcp.lastDir === dir && seq === tcp.lastEnd)
      return { verdict: 'close', note: '' };
    // Established, in window, not exact: the state stays (the later goto-in_window tests cannot
    // hold for an ASSURED entry whose last packet was no SYN, nor in ESTABLISHED).
    return { verdict: 'keep', note: `RST seq ${seq} is not the expected ${expected}: state kept for a challenge ACK` };
  }
  // An RST answering the SYN or ACK we let through last ("RST sent to invalid SYN or ACK"): its
  // ack is that segment's end. After a SYN, only from the other side (an RST answers the SYN; Linux
  // 6.18 measured: the SYN's own side's RST acking the same end goes on to the window check).
  const ack = pv.tcpAck;
  if (
    ((e.seenReply && tcp.lastIndex === TCP_SYN_SET && tcp.lastDir !== dir) ||
      (!e.assured && tcp.lastIndex === TCP_ACK_SET)) &&
    ack === tcp.lastEnd
  )
    return { verdict: 'in-window', note: '' };
  // "Reset in response to a challenge-ack we let through earlier": in SYN_SENT, after an ignored
  // reply ACK (a challenge ACK answering the SYN), an RST whose seq is that ACK's ack.
  if (oldState === TCP_SYN_SENT && tcp.lastIndex === TCP_ACK_SET && tcp.lastDir === DIR_REPLY && seq === tcp.lastAck)
    return { verdict: 'in-window', note: '' };
  return { verdict: 'close', note: '' };
}

// --- UDP (nf_conntrack_proto_udp.c) ---------------------------------------------------------------

function udpPacket(
  table: ConntrackTable,
  e: CtEntry,
  isNew: boolean,
  pkt: Uint8Array,
  pv: PacketView,
  verifyChecksums: boolean,
  nowMs: number,
): TrackResult {
  // udp_error
  if (pv.status === PARSE_TRUNCATED_L4) return { verdict: 'invalid', note: 'udp: short packet' };
  if (pv.status === PARSE_BAD_UDP_LENGTH) return { verdict: 'invalid', note: 'udp: truncated/malformed packet' };
  if (pv.l4Csum !== 0 && verifyChecksums && !verifyL4Checksum(pkt, pv))
    return { verdict: 'invalid', note: 'udp: bad checksum' };
  const t = table.settings.timeouts;
  if (isNew) e.udpStreamMs = nowMs + UDP_STREAM_AFTER_S * 1000;
  if (e.seenReply) {
    if (nowMs > e.udpStreamMs) {
      const becomes = !e.assured;
      e.assured = true;
      table.refresh(e, nowMs, t.udpStream);
      return { verdict: 'accept', note: `udp stream${becomes ? ', ASSURED' : ''}; timeout ${t.udpStream} s` };
    }
    table.refresh(e, nowMs, t.udp);
    return { verdict: 'accept', note: `udp replied within 2 s of the first packet; timeout ${t.udp} s` };
  }
  table.refresh(e, nowMs, t.udp);
  return { verdict: 'accept', note: `udp ${isNew ? 'new' : 'unreplied'}; timeout ${t.udp} s` };
}

// --- ICMP queries (nf_conntrack_proto_icmp.c) ---------------------------------------------------

const ICMP_VALID_NEW = new Set([ICMP_ECHO, ICMP_TIMESTAMP, ICMP_INFO_REQUEST, ICMP_ADDRESS]);

function icmpPacket(table: ConntrackTable, e: CtEntry, nowMs: number): TrackResult {
  const origType = e.tuples[0].dport >>> 8;
  if (!ICMP_VALID_NEW.has(origType))
    return { verdict: 'invalid', note: `icmp: type ${origType} cannot create an entry` };
  const t = table.settings.timeouts;
  table.refresh(e, nowMs, t.icmp);
  return { verdict: 'accept', note: `icmp; timeout ${t.icmp} s` };
}
