// The two sides of a real NAT box, from its captures: `--inside IN --outside OUT` (one file per
// side), or one capture holding both (`tcpdump -i any` on the box) split into sides:
//   1. a pcapng whose interfaces are named for their side (inside/lan, outside/wan): by interface;
//   2. otherwise by addresses (`--inside CIDRS`): a frame with an inside source and an outside
//      destination was seen on the inside (an inside host sending), one with an inside destination
//      and an outside source on the inside too (the box delivering), one with neither address
//      inside on the outside; inside-to-inside frames never cross the box (skipped). A frame the box
//      forwarded without translating shows twice (the same IP packet, TTL one lower): the first
//      copy is the side it arrived on, the second the other side.
// Anything else is refused with the reason (InputError, exit 2). Cold path.

import { openCapture } from '../../pcap/index.ts';
import { PacketView, PARSE_OK, parseFrame } from '../../packet/parse.ts';
import { ETHERTYPE_IPV4 } from '../../packet/constants.ts';
import { cidrContains, formatCidr } from '../../packet/addr.ts';
import { InputError } from '../../spec/errors.ts';
import type { Cidr } from '../../spec/scenario.ts';

export const SIDE_INSIDE = 0;
export const SIDE_OUTSIDE = 1;
export const SIDE_NAMES = ['inside', 'outside'] as const;

/** One captured IPv4 frame of one side. */
export interface SideFrame {
  side: number;
  timeUs: number;
  /** The IPv4 packet (link header stripped). */
  frame: Uint8Array;
  /** Where it came from: file and 1-based frame number (as Wireshark counts). */
  file: string;
  no: number;
}

export interface Sides {
  frames: [SideFrame[], SideFrame[]];
  /** How frames were given to sides, in one sentence. */
  how: string;
  /** Frames not used, by reason (not IPv4, inside-to-inside, ...). */
  skipped: Map<string, number>;
  warnings: string[];
}

/** pcapng interface names that say a side. */
const INSIDE_NAMES = new Set(['inside', 'lan', 'in', 'internal', 'private']);
const OUTSIDE_NAMES = new Set(['outside', 'wan', 'out', 'external', 'public']);

/** How far apart (µs) the two copies of a forwarded, untranslated frame may be. */
const COPY_WINDOW_US = 1_000_000;

interface RawFrame {
  timeUs: number;
  frame: Uint8Array;
  no: number;
  iface: number;
}

async function readIpv4(
  path: string,
  skipped: Map<string, number>,
): Promise<{ frames: RawFrame[]; ifNames: string[] }> {
  const r = await openCapture(path);
  const frames: RawFrame[] = [];
  const pv = new PacketView();
  try {
    for await (const rec of r) {
      const st = parseFrame(rec.data, 0, rec.data.length, rec.linkType, pv);
      if (pv.etherType !== ETHERTYPE_IPV4 || (st !== PARSE_OK && pv.capLen < 20)) {
        skipped.set('not IPv4', (skipped.get('not IPv4') ?? 0) + 1);
        continue;
      }
      frames.push({
        timeUs: rec.timeUs,
        frame: new Uint8Array(rec.data.subarray(pv.l3Off, pv.l3Off + pv.capLen)),
        no: rec.index + 1,
        iface: rec.interfaceId,
      });
    }
  } finally {
    await r.close();
  }
  return { frames, ifNames: r.info.interfaces.map((i) => i.name.toLowerCase()) };
}

const src = (f: Uint8Array): number => ((f[12] << 24) | (f[13] << 16) | (f[14] << 8) | f[15]) >>> 0;
const dst = (f: Uint8Array): number => ((f[16] << 24) | (f[17] << 16) | (f[18] << 8) | f[19]) >>> 0;

/** `--inside IN --outside OUT`: each file is one side. */
export async function readTwoSides(insidePath: string, outsidePath: string): Promise<Sides> {
  const skipped = new Map<string, number>();
  const a = await readIpv4(insidePath, skipped);
  const b = await readIpv4(outsidePath, skipped);
  const side = (raw: RawFrame[], s: number, file: string): SideFrame[] =>
    raw.map((x) => ({ side: s, timeUs: x.timeUs, frame: x.frame, file, no: x.no }));
  const frames: [SideFrame[], SideFrame[]] = [
    side(a.frames, SIDE_INSIDE, insidePath),
    side(b.frames, SIDE_OUTSIDE, outsidePath),
  ];
  refuseEmpty(frames, `${insidePath} / ${outsidePath}`);
  return { frames, how: 'one capture per side (--inside / --outside)', skipped, warnings: [] };
}

function refuseEmpty(frames: [SideFrame[], SideFrame[]], what: string): void {
  for (const s of [SIDE_INSIDE, SIDE_OUTSIDE]) {
    if (frames[s].length === 0)
      throw new InputError(
        `${what}: no IPv4 frame on the ${SIDE_NAMES[s]} side; verify needs both sides of the box (a one-sided capture is for natlab replay)`,
        what,
      );
  }
}

/** The same IP packet one hop later: equal but for TTL − 1 and the header checksum. */
function isForwardedCopy(first: Uint8Array, second: Uint8Array): boolean {
  if (first.length !== second.length || second[8] !== first[8] - 1) return false;
  for (let i = 0; i < first.length; i++) {
    if (i === 8 || i === 10 || i === 11) continue;
    if (first[i] !== second[i]) return false;
  }
  return true;
}

/** `--in BOTH`: one capture holding both sides, split by interface names or by `inside` CIDRs. */
export async function readSplitSides(path: string, inside: Cidr[]): Promise<Sides> {
  const skipped = new Map<string, number>();
  const { frames: raw, ifNames } = await readIpv4(path, skipped);
  const used = [...new Set(raw.map((r) => r.iface))];
  const sideOfIf: number[] = used.map((i) =>
    INSIDE_NAMES.has(ifNames[i] ?? '') ? 0 : OUTSIDE_NAMES.has(ifNames[i] ?? '') ? 1 : -1,
  );
  const named = sideOfIf.filter((s) => s >= 0).length;
  const out: [SideFrame[], SideFrame[]] = [[], []];
  if (used.length > 1 && named > 0) {
    if (named !== used.length) {
      const odd = used.filter((_, k) => sideOfIf[k] < 0).map((i) => `'${ifNames[i] ?? i}'`);
      throw new InputError(
        `${path}: interfaces ${odd.join(', ')} are named for neither side (inside/lan or outside/wan) while others are: cannot tell which side their frames were seen on`,
        path,
      );
    }
    for (const r of raw) {
      const s = sideOfIf[used.indexOf(r.iface)];
      out[s === SIDE_INSIDE ? 0 : 1].push({ side: s, timeUs: r.timeUs, frame: r.frame, file: path, no: r.no });
    }
    refuseEmpty(out, path);
    return {
      frames: out,
      how: `by pcapng interface name (${used.map((i, k) => `${ifNames[i]} = ${SIDE_NAMES[sideOfIf[k] === SIDE_INSIDE ? 0 : 1]}`).join(', ')})`,
      skipped,
      warnings: [],
    };
  }
  if (inside.length === 0)
    throw new InputError(
      `${path}: one capture holding both sides needs --inside CIDRS to tell them apart (its interfaces are not named inside/outside)`,
      path,
    );
  const isIn = (a: number): boolean => inside.some((c) => cidrContains(c, a));
  // Per frame: its side by addresses; a forwarded untranslated copy takes the other side.
  const recent: Array<{ r: RawFrame; k: number }> = [];
  const sideOf: number[] = new Array(raw.length).fill(-1);
  let copies = 0;
  raw.forEach((r, k) => {
    const f = r.frame;
    const si = isIn(src(f));
    const di = isIn(dst(f));
    if (si && di) {
      skipped.set(
        'inside to inside (does not cross the box)',
        (skipped.get('inside to inside (does not cross the box)') ?? 0) + 1,
      );
      return;
    }
    if (!si && !di) {
      sideOf[k] = SIDE_OUTSIDE;
      return;
    }
    while (recent.length > 0 && r.timeUs - recent[0].r.timeUs > COPY_WINDOW_US) recent.shift();
    const at = recent.findIndex((x) => isForwardedCopy(x.r.frame, f));
    if (at >= 0) {
      // The second copy of an untranslated forward: it left by the other side than it arrived
      // (from an inside source: arrived inside; to an inside destination: arrived outside).
      const first = recent[at];
      recent.splice(at, 1);
      const arrived = si ? SIDE_INSIDE : SIDE_OUTSIDE;
      sideOf[first.k] = arrived;
      sideOf[k] = 1 - arrived;
      copies++;
      return;
    }
    sideOf[k] = SIDE_INSIDE;
    if (recent.length < 4096) recent.push({ r, k });
  });
  raw.forEach((r, k) => {
    const s = sideOf[k];
    if (s === SIDE_INSIDE || s === SIDE_OUTSIDE)
      out[s].push({ side: s, timeUs: r.timeUs, frame: r.frame, file: path, no: r.no });
  });
  refuseEmpty(out, path);
  return {
    frames: out,
    how: `by address: a frame with an inside source or destination (${inside.map(formatCidr).join(', ')}) was seen on the inside, others on the outside; ${copies} frame(s) seen twice (forwarded untranslated, TTL − 1): first copy = the side it arrived on`,
    skipped,
    warnings: [],
  };
}
