// A planted engine bug for tests of difference reporting (captures, JUnit, HTML): engine `model` is
// the model; any other name is the model, except that the nth packet it sees is dropped as a NAT
// clash with no output.
import { makeEngine } from '../../src/diff/engines.ts';
import type { EngineFactory } from '../../src/diff/replay/replay.ts';
import type { Engine, PacketResult } from '../../src/spec/engine.ts';
import { DROP_NAT_CLASH, FATE_DROPPED } from '../../src/spec/reasons.ts';

export function plantedNatClash(nth = 5): EngineFactory {
  return async (name, sc, o) => {
    const inner = await makeEngine('model', sc, o);
    if (name === 'model') return inner;
    let seen = 0;
    const e: Engine = {
      name,
      async process(batch) {
        const res = await inner.process(batch);
        return res.map(
          (r): PacketResult =>
            ++seen === nth ? { fate: FATE_DROPPED, reason: DROP_NAT_CLASH, detail: 0, ct: r.ct, outputs: [] } : r,
        );
      },
      advance: (t) => inner.advance(t),
      conntrack: () => inner.conntrack(),
      natCounters: () => inner.natCounters(),
      close: () => inner.close(),
    };
    return e;
  };
}
