// Deliberate damage to a well-formed IPv4 frame, for fuzzing the malformed-input paths: each kind
// is a small, named, deterministic transformation (serialisable, so a saved counterexample can
// re-apply it to every engine's copy of the frame).

import { csumReplace16 } from '../packet/checksum.ts';
import { ipv4HeaderChecksum } from '../packet/checksum.ts';
import { PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../packet/constants.ts';
import { rd16, wr16 } from '../packet/bytes.ts';

export const DAMAGE_KINDS = [
  'truncate', // capture shorter than the IP total length (arg: bytes kept, clamped)
  'bad-ip-checksum',
  'bad-l4-checksum',
  'bad-ihl', // IHL < 5
  'ihl-past-end', // IHL 15 on a short packet
  'bad-version',
  'zero-total-length',
  'fragment-first', // MF set, offset 0
  'fragment-later', // offset 8 (non-first fragment)
  'bad-tcp-data-offset', // TCP data offset 3 (only TCP; others unchanged)
  'ttl', // TTL set to arg (0, 1 or 2)
  'udp-no-checksum', // UDP checksum 0 (valid "none")
] as const;
export type DamageKind = (typeof DAMAGE_KINDS)[number];

export interface Damage {
  kind: DamageKind;
  arg: number;
}

function fixIpCsum(b: Uint8Array): void {
  const ihl = (b[0] & 15) << 2;
  if (ihl < 20 || ihl > b.length) return;
  wr16(b, 10, ipv4HeaderChecksum(b, 0, ihl));
}

/** A damaged copy of `frame`. Frames too short for a kind come back unchanged (copied). */
export function applyDamage(frame: Uint8Array, d: Damage): Uint8Array {
  const f = frame.slice();
  if (f.length < 20) return f;
  const ihl = (f[0] & 15) << 2;
  const proto = f[9];
  switch (d.kind) {
    case 'truncate': {
      const keep = Math.max(1, Math.min(f.length - 1, d.arg));
      return f.slice(0, keep);
    }
    case 'bad-ip-checksum':
      f[11] ^= 0x5a;
      return f;
    case 'bad-l4-checksum': {
      const off = proto === PROTO_TCP ? 16 : proto === PROTO_UDP ? 6 : proto === PROTO_ICMP ? 2 : -1;
      if (off >= 0 && ihl + off + 2 <= f.length) {
        f[ihl + off] ^= 0x33;
        if (proto === PROTO_UDP && rd16(f, ihl + off) === 0) f[ihl + off + 1] ^= 1; // 0 would mean "none"
      }
      return f;
    }
    case 'bad-ihl':
      f[0] = 0x40 | 4;
      fixIpCsumRaw(f);
      return f;
    case 'ihl-past-end':
      f[0] = 0x4f;
      return f;
    case 'bad-version':
      f[0] = 0x60 | (f[0] & 15);
      return f;
    case 'zero-total-length':
      wr16(f, 2, 0);
      fixIpCsum(f);
      return f;
    case 'fragment-first':
      wr16(f, 6, (rd16(f, 6) & ~0x1fff) | 0x2000);
      fixIpCsum(f);
      return f;
    case 'fragment-later':
      wr16(f, 6, (rd16(f, 6) & 0x4000) | 1);
      fixIpCsum(f);
      return f;
    case 'bad-tcp-data-offset':
      if (proto === PROTO_TCP && ihl + 13 < f.length) f[ihl + 12] = (3 << 4) | (f[ihl + 12] & 15);
      return f;
    case 'ttl': {
      const old = rd16(f, 8);
      f[8] = d.arg & 0xff;
      wr16(f, 10, csumReplace16(rd16(f, 10), old, rd16(f, 8)));
      return f;
    }
    case 'udp-no-checksum':
      if (proto === PROTO_UDP && ihl + 8 <= f.length) wr16(f, ihl + 6, 0);
      return f;
  }
}

/** IP header checksum over the first 20 bytes (for a header whose IHL field is wrong). */
function fixIpCsumRaw(b: Uint8Array): void {
  wr16(b, 10, 0);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += rd16(b, i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  wr16(b, 10, ~s & 0xffff);
}

export function damageText(d: Damage): string {
  return d.kind === 'truncate' || d.kind === 'ttl' ? `${d.kind}=${d.arg}` : d.kind;
}
