// DROP_* codes and their report names live in one file (src/spec/reasons.ts): the constant's name
// must be its report name (DROP_SRC_DST_CHECK_SRC <-> 'src-dst-check-src'), codes unique, and every
// name a constant — so adding a reason to one and not the other fails here.
import { describe, expect, it } from 'vitest';
import * as reasons from '../../src/spec/reasons.ts';

describe('drop reasons', () => {
  const constants = Object.entries(reasons).filter(([k, v]) => k.startsWith('DROP_') && typeof v === 'number') as Array<
    [string, number]
  >;

  it('every DROP_* constant names its REASONS entry', () => {
    expect(constants.length).toBeGreaterThan(20);
    const wrong = constants.filter(
      ([k, v]) => reasons.REASONS[v] !== k.slice('DROP_'.length).toLowerCase().replace(/_/g, '-'),
    );
    expect(wrong.map(([k, v]) => `${k} = ${v} is '${reasons.REASONS[v]}'`)).toEqual([]);
  });

  it('codes are unique and cover REASONS exactly (0 is none)', () => {
    const codes = constants.map(([, v]) => v).sort((a, b) => a - b);
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes).toEqual(Array.from({ length: reasons.REASON_COUNT - 1 }, (_, i) => i + 1));
    expect(reasons.REASONS[reasons.REASON_NONE]).toBe('none');
  });

  it('reasonName and reasonCode are inverse', () => {
    for (const [, v] of constants) expect(reasons.reasonCode(reasons.reasonName(v))).toBe(v);
    expect(reasons.reasonName(200)).toBe('reason-200');
    expect(() => reasons.reasonCode('no-such-reason')).toThrow(/unknown reason/);
  });
});
