// A planted engine bug for fuzzer tests: the model, except that UDP leaving to the internet keeps
// a stale checksum (one bit flipped) while `bug.armed`. `bug.once` disarms it when the first engine
// that applied it closes — a failure that happens once and never again.
import type { Engine, InputPacket, PacketResult } from '../../src/spec/engine.ts';
import { POINT_INTERNET } from '../../src/spec/scenario.ts';
import { PROTO_UDP } from '../../src/packet/constants.ts';

export interface PlantedBug {
  armed: boolean;
  once: boolean;
}

export function withPlantedBug(inner: Engine, bug: PlantedBug = { armed: true, once: false }): Engine {
  let applied = false;
  return {
    name: 'buggy',
    async process(batch: readonly InputPacket[]): Promise<PacketResult[]> {
      const rs = await inner.process(batch);
      if (!bug.armed) return rs;
      return rs.map((r) => ({
        ...r,
        outputs: r.outputs.map((o) => {
          const f = o.frame;
          const ihl = (f[0] & 15) << 2;
          if (
            o.egress !== POINT_INTERNET ||
            f[9] !== PROTO_UDP ||
            f.length < ihl + 8 ||
            (f[ihl + 6] | f[ihl + 7]) === 0
          )
            return o;
          applied = true;
          const c = f.slice();
          c[ihl + 7] ^= 0x01;
          return { egress: o.egress, frame: c };
        }),
      }));
    },
    advance: (t) => inner.advance(t),
    conntrack: () => inner.conntrack(),
    natCounters: () => inner.natCounters(),
    close: async () => {
      if (applied && bug.once) bug.armed = false;
      await inner.close();
    },
  };
}
