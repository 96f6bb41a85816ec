// ICMP errors at a NAT instance (docs/semantics.md §6): a received error RELATED to an entry is
// translated (nf_nat_icmp_reply_translation: outer and quoted packet, the redirect and checksum
// rules), and a packet whose TTL runs out (or a filter REJECT, §13) gets an error built from the
// instance (icmp_send: quoting the packet as it is at that point), which then passes the
// instance's OUTPUT conntrack/NAT as RELATED (and filter OUTPUT) before the hop walk takes it out.
// Twin of src/model/icmp.ts.

import { M_DST_NAT, M_SRC_NAT } from './layout.ts';
import type { CompiledScenario } from './compile.ts';
import type { Conntrack } from './conntrack.ts';
import type { PacketManip } from './manip.ts';
import { MANIP_DST, MANIP_SRC } from './nat-port-search.ts';
import type { SlowState } from './slow-state.ts';
import type { IcmpRateLimits } from './icmp-ratelimit.ts';
import { parseIpv4 } from '../packet/parse.ts';
import { wr16, wr32 } from '../packet/bytes.ts';
import { fold16, sum16 } from '../packet/checksum.ts';
import { ICMP_ADDRESSREPLY, ICMP_REDIRECT, PROTO_ICMP, isIcmpErrorType } from '../packet/constants.ts';
import { CT_RELATED, DROP_ICMP_BAD_CHECKSUM, DROP_ICMP_REDIRECT_NAT, REASON_NONE } from '../spec/reasons.ts';
import { DEFAULT_IP_TTL, ICMP_ERROR_MAX_LEN } from '../spec/timeouts.ts';

export class IcmpErrors {
  constructor(
    private readonly c: CompiledScenario,
    private readonly st: SlowState,
    private readonly ct: Conntrack,
    private readonly manip: PacketManip,
    private readonly limits: IcmpRateLimits,
  ) {}

  /**
   * RELATED ICMP error translation at a hook of type `manip` (nf_nat_icmp_reply_translation).
   * Returns REASON_NONE, or the drop reason: a bad ICMP checksum, or a redirect about an entry
   * with any NAT ("Redirects are only translated for entries without NAT").
   */
  replyTranslation(manip: number): number {
    const st = this.st;
    const pv = st.pv;
    const b = st.buf;
    if (fold16(sum16(b, pv.l4Off, pv.l4Len)) !== 0xffff) return DROP_ICMP_BAD_CHECKSUM;
    if (pv.icmpType === ICMP_REDIRECT && (st.eMeta & (M_SRC_NAT | M_DST_NAT)) !== 0) return DROP_ICMP_REDIRECT_NAT;
    const dir = st.cDir;
    let bit = manip === MANIP_SRC ? M_SRC_NAT : M_DST_NAT;
    if (dir === 1) bit = bit === M_SRC_NAT ? M_DST_NAT : M_SRC_NAT;
    if ((st.eMeta & bit) === 0) return REASON_NONE;
    let os: number, od: number, op: number;
    if (dir === 0) {
      os = st.eRs;
      od = st.eRd;
      op = st.eRp;
    } else {
      os = st.eOs;
      od = st.eOd;
      op = st.eOp;
    }
    const m = this.manip;
    if (manip === MANIP_DST) {
      // inner: SRC manip with the other tuple
      m.setInnerAddr(0, os, true);
      m.setInnerPort(0, op >>> 16);
      m.setAddr(1, os);
    } else {
      m.setInnerAddr(1, od, true);
      if (pv.innerProto === PROTO_ICMP) m.setInnerPort(0, op >>> 16);
      else m.setInnerPort(1, op & 0xffff);
      m.setAddr(0, od);
    }
    m.icmpRecompute();
    return REASON_NONE;
  }

  /**
   * Builds an ICMP error (type, code) from instance `inst` back to the current packet's source,
   * quoting it as it is now (time exceeded: as received, post-DNAT, pre-decrement; a REJECT's
   * unreachable: at its hook), at st.errOff, and runs it through the instance's LOCAL_OUT
   * conntrack and the DST manip (NAT slot `slot`, or -1 for a plain host). True: the error exists
   * and is now the frame being walked (st.gen set, st.ctCls its classification); the caller runs
   * filter OUTPUT, then `postrouting`, then walks it out of the instance. False: none (not for
   * this packet, or the rate limits at absolute ms `now` refused it: §6, as the model's).
   */
  generate(inst: number, slot: number, type: number, code: number, now: number, attach = false): boolean {
    const st = this.st;
    const triggerDir = st.cDir;
    const pv = st.pv;
    const b = st.buf;
    if (pv.fragOff !== 0) return false; // "only reply to fragment 0"
    if (pv.proto === PROTO_ICMP) {
      // RFC 1122 3.2.2: never an error about an error (unknown types count as errors).
      if (pv.totalLen - pv.ihl < 1) return false;
      const t = b[st.fo + pv.ihl];
      if (t > ICMP_ADDRESSREPLY || isIcmpErrorType(t)) return false;
    }
    if (!this.limits.allow(inst, type, code, pv.src, now)) return false;
    const q = Math.min(pv.totalLen, ICMP_ERROR_MAX_LEN - 28);
    const eo = st.errOff;
    const tot = 28 + q;
    for (let k = 0; k < q; k++) b[eo + 28 + k] = b[st.fo + k];
    const src = pv.src;
    b[eo] = 0x45;
    b[eo + 1] = (pv.tos & 0x1e) | 0xc0;
    wr16(b, eo + 2, tot);
    wr16(b, eo + 4, 0);
    wr16(b, eo + 6, 0);
    b[eo + 8] = DEFAULT_IP_TTL;
    b[eo + 9] = PROTO_ICMP;
    wr16(b, eo + 10, 0);
    wr32(b, eo + 12, this.c.instPriv[inst]);
    wr32(b, eo + 16, src);
    wr16(b, eo + 10, ~fold16(sum16(b, eo, 20)) & 0xffff);
    b[eo + 20] = type;
    b[eo + 21] = code;
    wr16(b, eo + 22, 0);
    wr32(b, eo + 24, 0);
    wr16(b, eo + 22, ~fold16(sum16(b, eo + 20, 8 + q)) & 0xffff);
    // From here on the generated frame is walked.
    st.gen = true;
    st.fo = eo;
    parseIpv4(b, eo, tot, pv);
    if (slot >= 0) {
      if (attach) {
        // icmp_send attaches the trigger's entry (nf_ct_attach), confirmed or pending, RELATED in
        // the other direction: its NAT (a first packet's DNAT too) is undone in the quote. The
        // entry's fields are still loaded (st.e*); nothing else of it is touched.
        st.ctCls = CT_RELATED;
        st.cDir = triggerDir ^ 1;
      } else this.ct.in(slot, false);
      if (st.ctCls === CT_RELATED) this.replyTranslation(MANIP_DST);
      st.pending = false;
      st.killAfter = false;
    }
    return true;
  }

  /** POSTROUTING of a generated error (after filter OUTPUT): the SRC manip of its RELATED entry. */
  postrouting(slot: number): void {
    if (slot >= 0 && this.st.ctCls === CT_RELATED) this.replyTranslation(MANIP_SRC);
  }
}
