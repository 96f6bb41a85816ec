// get_unique_tuple (nf_nat_core.c, docs/semantics.md §8): keep the tuple if it is in range and
// unused (a), reuse the newest bysource mapping (b: find_appropriate_src), take the range's address
// (find_best_ips_proto: the one address, or jhash2's choice in a range) and the packet's own port if free (c), else
// search the port range (nf_nat_l4proto_unique_tuple: 128/64/32/16/8 probes from a random offset
// drawn from the model's seeded generator, spec/prng.ts; Linux's default ranges 1–511 / 600–1023 /
// 1024–65535). With W > 1 workers a candidate must also dispatch its replies back to this worker
// (ownerOk). Twin of src/model/nat.ts.

import type { CompiledScenario } from './compile.ts';
import { invertPorts } from './ct-entry.ts';
import type { Conntrack } from './conntrack.ts';
import { isDnatTarget, ownerInbound, ownerOutbound } from './dispatch.ts';
import type { Tables } from './tables.ts';
import type { SlowState } from './slow-state.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import { natRangeAddress } from '../packet/jhash.ts';
import {
  NF_NAT_RANGE_MAP_IPS,
  NF_NAT_RANGE_PERSISTENT,
  NF_NAT_RANGE_PROTO_RANDOM,
  NF_NAT_RANGE_PROTO_RANDOM_FULLY,
  NF_NAT_RANGE_PROTO_SPECIFIED,
} from '../spec/scenario.ts';
import {
  PORT_RANGE_HIGH_MAX,
  PORT_RANGE_HIGH_MIN,
  PORT_RANGE_LOW_MAX,
  PORT_RANGE_LOW_MIN,
  PORT_RANGE_MID_MAX,
  PORT_RANGE_MID_MIN,
} from '../spec/timeouts.ts';

/** nf_nat_manip_type. */
export const MANIP_SRC = 0;
export const MANIP_DST = 1;

export class PortSearch {
  constructor(
    private readonly c: CompiledScenario,
    private readonly t: Tables,
    private readonly st: SlowState,
    private readonly ct: Conntrack,
    /** Workers, and this worker's index. */
    private readonly W: number,
    private readonly w: number,
  ) {}

  /** Candidates ownerOk refused in the current get_unique_tuple (W > 1). */
  private foreign = 0;

  /** With W > 1 workers: the reply of the candidate must be dispatched to this worker. */
  ownerOk(slot: number, proto: number, s: number, d: number, p: number): boolean {
    if (this.W === 1) return true;
    if (this.ownerOf(slot, proto, s, d, p)) return true;
    this.foreign++;
    return false;
  }

  private ownerOf(slot: number, proto: number, s: number, d: number, p: number): boolean {
    const c = this.c;
    const rp = invertPorts(proto, p);
    // The reply comes from d: from inside the VPC it is dispatched as an outbound packet (e.g. the
    // DNAT target answering a DNAT+SNAT flow), else as an inbound one.
    if ((d & c.vpcMask) >>> 0 === c.vpcAddr) {
      if ((proto !== PROTO_TCP && proto !== PROTO_UDP) || !isDnatTarget(c, slot, proto, d, rp >>> 16)) return true; // not port-dispatched
      return ownerOutbound(c, this.W, slot, proto, d, s, rp >>> 16, rp & 0xffff) === this.w;
    }
    return ownerInbound(c, this.W, slot, proto, d, s, rp >>> 16, rp & 0xffff) === this.w;
  }

  /** The manipulated port of a ports word: TCP/UDP sport (SRC) or dport (DST); ICMP: the id. */
  private keyOf(proto: number, manip: number, p: number): number {
    if (proto === PROTO_ICMP) return p >>> 16;
    if (proto === PROTO_TCP || proto === PROTO_UDP) return manip === MANIP_SRC ? p >>> 16 : p & 0xffff;
    return 0;
  }

  private withKey(proto: number, manip: number, p: number, key: number): number {
    const ported = proto === PROTO_TCP || proto === PROTO_UDP;
    if (proto === PROTO_ICMP || (ported && manip === MANIP_SRC)) return ((key << 16) | (p & 0xffff)) >>> 0;
    if (ported) return ((p & 0xffff0000) | key) >>> 0;
    return p;
  }

  /**
   * get_unique_tuple (§8): result in st.us / st.ud / st.up (and st.uFree, st.uForeign). The
   * addresses and the ports word may come as int32 (Nat.setupInfo passes them so: no boxing).
   */
  getUniqueTuple(
    slot: number,
    manip: number,
    proto: number,
    cs32: number,
    cd32: number,
    cp32: number,
    flags: number,
    alo32: number,
    ahi32: number,
    plo: number,
    phi: number,
  ): void {
    const cs = cs32 >>> 0;
    const cd = cd32 >>> 0;
    const cp = cp32 >>> 0;
    const alo = alo32 >>> 0;
    const ahi = ahi32 >>> 0;
    const st = this.st;
    const t = this.t;
    const ct = this.ct;
    const random = (flags & (NF_NAT_RANGE_PROTO_RANDOM | NF_NAT_RANGE_PROTO_RANDOM_FULLY)) !== 0;
    const protoSpec = (flags & NF_NAT_RANGE_PROTO_SPECIFIED) !== 0;
    if (plo > phi) {
      const x = plo;
      plo = phi;
      phi = x;
    }
    const ported = proto === PROTO_TCP || proto === PROTO_UDP;
    const checkOwner = manip === MANIP_SRC;
    st.uFree = false;
    st.uForeign = false;
    this.foreign = 0;
    if (manip === MANIP_SRC && !random) {
      // (a) already in range: keep it if unused; otherwise straight to the address choice.
      const keyed = protoSpec && (ported || proto === PROTO_ICMP);
      const ck = this.keyOf(proto, manip, cp);
      const inRange = cs >= alo && cs <= ahi && (!keyed || (ck >= plo && ck <= phi));
      if (inRange) {
        if (!ct.used(slot, proto, cs, cd, cp) && this.ownerOk(slot, proto, cs, cd, cp)) {
          st.us = cs;
          st.ud = cd;
          st.up = cp;
          st.uFree = true;
          return;
        }
      } else {
        // (b) the mapping of the newest live entry with the same (proto, orig src, orig sport)
        // whose mapping is in range (find_appropriate_src walks the bysource chain newest-first).
        const bsKey = ported || proto === PROTO_ICMP ? cp >>> 16 : 0;
        const other = t.findBySource(slot, proto, cs, bsKey, st.now, alo, ahi, keyed ? plo : 0, keyed ? phi : 0xffff);
        if (other >= 0) {
          const o = t.rec(other);
          const ns = t.ses[o + 4];
          const rports = t.ses[o + 5];
          const nkey = proto === PROTO_ICMP ? rports >>> 16 : ported ? rports & 0xffff : 0;
          const np = this.withKey(proto, manip, cp, nkey);
          if (!ct.used(slot, proto, ns, cd, np) && this.ownerOk(slot, proto, ns, cd, np)) {
            st.us = ns;
            st.ud = cd;
            st.up = np;
            st.uFree = true;
            return;
          }
        }
      }
    }
    // IP choice (find_best_ips_proto): the one address, or the one jhash2 of the tuple picks.
    let ts = cs;
    let td = cd;
    if (flags & NF_NAT_RANGE_MAP_IPS) {
      const a = alo === ahi ? alo : natRangeAddress(cs, cd, alo, ahi, (flags & NF_NAT_RANGE_PERSISTENT) !== 0);
      if (manip === MANIP_SRC) ts = a;
      else td = a;
    }
    let tp = cp;
    if (!random) {
      const key = this.keyOf(proto, manip, tp);
      if (protoSpec && (ported || proto === PROTO_ICMP)) {
        if (
          key >= plo &&
          key <= phi &&
          (plo === phi || !ct.used(slot, proto, ts, td, tp)) &&
          (!checkOwner || this.ownerOk(slot, proto, ts, td, tp))
        ) {
          st.us = ts;
          st.ud = td;
          st.up = tp;
          return;
        }
      } else if (manip === MANIP_DST && proto !== PROTO_ICMP) {
        // A DST manip without a port range keeps the tuple whether it is used or not (the search
        // below returns at once for TCP/UDP: nf_nat_l4proto_unique_tuple never changes their
        // port without a range; other protocols have nothing to search), so nf_nat_used_tuple's
        // lookup is skipped — one random flow-table line less for the PREROUTING null binding of
        // every new flow. The lookup could only have released an expired entry early, which no
        // decision sees: lookups check expiry, a table-full decision drains the expired first
        // (Conntrack.earlyDrop).
        st.us = ts;
        st.ud = td;
        st.up = tp;
        return;
      } else if (!ct.used(slot, proto, ts, td, tp) && (!checkOwner || this.ownerOk(slot, proto, ts, td, tp))) {
        st.us = ts;
        st.ud = td;
        st.up = tp;
        st.uFree = true;
        return;
      }
    }
    // Search.
    st.us = ts;
    st.ud = td;
    st.up = tp;
    let min: number;
    let size: number;
    if (ported) {
      if (!protoSpec) {
        if (manip === MANIP_DST) return;
        const key = this.keyOf(proto, manip, tp);
        if (key < 1024) {
          if (key < 512) {
            min = PORT_RANGE_LOW_MIN;
            size = PORT_RANGE_LOW_MAX - PORT_RANGE_LOW_MIN + 1;
          } else {
            min = PORT_RANGE_MID_MIN;
            size = PORT_RANGE_MID_MAX - PORT_RANGE_MID_MIN + 1;
          }
        } else {
          min = PORT_RANGE_HIGH_MIN;
          size = PORT_RANGE_HIGH_MAX - PORT_RANGE_HIGH_MIN + 1;
        }
      } else {
        min = plo;
        size = phi - plo + 1;
      }
    } else if (proto === PROTO_ICMP) {
      if (!protoSpec) {
        min = 0;
        size = 65536;
      } else {
        min = plo;
        size = phi - plo + 1;
      }
    } else {
      return;
    }
    let off = random || manip === MANIP_SRC ? t.rand() & 0xffff : 0;
    let attempts = Math.min(size, 128);
    for (;;) {
      // off is a u16 in the kernel: it wraps at 65536, which moves min + off % size (model twin).
      for (let i = 0; i < attempts; i++, off = (off + 1) & 0xffff) {
        tp = this.withKey(proto, manip, tp, min + (off % size));
        st.up = tp;
        if ((!checkOwner || this.ownerOk(slot, proto, ts, td, tp)) && !ct.used(slot, proto, ts, td, tp)) {
          st.uFree = true;
          return;
        }
      }
      if (attempts >= size || attempts < 16) {
        // Nothing free: the last candidate is installed and clashes at confirm. With W > 1 a
        // candidate owned by another worker may be in use there (its table is not ours to see):
        // count it as the clash the kernel would see, rather than hand out a port whose replies
        // go to another worker.
        if (checkOwner && !this.ownerOk(slot, proto, ts, td, tp)) st.uForeign = true;
        // Candidates other workers own were skipped: the model's one search might have found one.
        if (this.foreign > 0) t.notePortShareDecision(slot, st.batchNo, st.pkt);
        return;
      }
      attempts >>= 1;
      off = t.rand() & 0xffff;
    }
  }
}
