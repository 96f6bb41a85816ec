import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { compileScenarioObject, parseScenario } from '../../src/scenario/load.ts';
import { scenarioToObject, scenarioToYaml } from '../../src/scenario/to-yaml.ts';
import { parseNatTable } from '../../src/scenario/iptables.ts';
import { loadBuiltinScenario } from '../../src/scenario/builtin.ts';
import { natRuleArb, scenarioObjectArb, tableText } from './arbitraries.ts';

describe('scenarioToYaml round trip', () => {
  it('the built-in scenario survives toYaml → parse', () => {
    const s = loadBuiltinScenario();
    const back = parseScenario(scenarioToYaml(s), 'back.yaml');
    expect({ ...back, source: s.source }).toEqual(s);
  });

  it('parse(toYaml(s)) deep-equals s for generated scenarios (and the JSON form too)', () => {
    fc.assert(
      fc.property(scenarioObjectArb, (obj) => {
        const s = parseScenario(stringify(obj), 'gen.yaml');
        const y = scenarioToYaml(s);
        const back = parseScenario(y, 'back.yaml');
        expect({ ...back, source: s.source }).toEqual(s);
        const json = compileScenarioObject(JSON.parse(JSON.stringify(scenarioToObject(s))), 'back.json');
        expect({ ...json, source: s.source }).toEqual(s);
      }),
      { numRuns: 150 },
    );
  });

  it('generated nat rules parse back to the fields they were formatted from', () => {
    fc.assert(
      fc.property(fc.array(natRuleArb, { minLength: 1, maxLength: 8 }), (rules) => {
        const t = parseNatTable(tableText(rules), 'gen');
        const flat = (['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'] as const).flatMap((c) =>
          rules.filter((r) => r.chain === c).map((r) => r.rule),
        );
        expect((['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'] as const).flatMap((c) => t.chains[c])).toEqual(flat);
        expect(t.text).toBe(tableText(rules));
      }),
      { numRuns: 200 },
    );
  });
});
