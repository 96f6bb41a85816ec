// The session record's words that hold the security groups' lazy state (layout.ts re-exports them;
// aws-filters.ts reads and writes them). Their own file so that aws-filters.ts, which layout.ts
// imports to size the tracking tables, need not import the layout.
//
// An ASSURED session has left the non-ASSURED (early-drop) list for good — ASSURED is never
// cleared and only a new session joins the list — so its two list-link words (S_NPREV 12, S_NNEXT
// 13; both 0 once ASSURED) are free: they hold the security-group state of its fast path, in the
// one cache line the fast path reads anyway. Read them only when the session is ASSURED.

/**
 * 0 = none. Else bit 0 (SG_OWNS): the session owns the tracked flows listed in the `sgOwn`
 * region (their expiry is derived from S_SG_SEEN); bits 1-2 (SG_FAST << kind): the orig / reply
 * direction may take the fast path; bit 3 (SG_UNSETTLED): an owned flow's timeout is not its
 * final one yet (owned by one direction, passed as requests); bits 4-31: the rule generation
 * (& SG_GEN_MASK) it was recorded under.
 */
export const S_SG_STATE = 12;
/** Worker ms of the last packet that refreshed the owned flows (fast path: every packet). */
export const S_SG_SEEN = 13;
export const SG_OWNS = 1;
export const SG_FAST = 2;
export const SG_UNSETTLED = 8;
export const SG_GEN_SHIFT = 4;
export const SG_GEN_MASK = 0x0fffffff;
