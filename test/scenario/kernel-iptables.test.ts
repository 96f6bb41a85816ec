// Our canonical nat-table text must be what the real tools accept and print: load it with
// iptables-restore into a fresh network namespace and compare iptables-save's output line by line.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { parseNatTable } from '../../src/scenario/iptables.ts';
import { loadBuiltinScenario } from '../../src/scenario/builtin.ts';
import { natRuleArb, tableText } from './arbitraries.ts';

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const missing = [!isRoot && 'root', !have('unshare') && 'unshare', !have('iptables-restore') && 'iptables-restore', !have('iptables-save') && 'iptables-save'].filter(Boolean);
const reason = missing.length ? `needs ${missing.join(', ')}` : '';

/** iptables-restore the text in a throwaway netns, return iptables-save -t nat without comment lines. */
function roundTripThroughKernel(text: string): string {
  const r = spawnSync('unshare', ['-n', 'sh', '-c', 'iptables-restore && iptables-save -t nat'], { input: text, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`iptables-restore failed (${r.status}): ${r.stderr}\n--- input ---\n${text}`);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .join('\n') + '\n';
}

describe.skipIf(missing.length > 0)(`canonical nat text vs the real iptables ${reason}`, () => {
  it('the built-in NAT instance table is accepted and printed back identically', () => {
    const text = loadBuiltinScenario().instances.find((i) => i.name === 'nat')!.nat!.text;
    expect(roundTripThroughKernel(text)).toBe(text);
  });

  it('generated rules: iptables-restore accepts them and iptables-save prints exactly our text', () => {
    fc.assert(
      fc.property(fc.array(natRuleArb, { minLength: 1, maxLength: 30 }), (rules) => {
        const text = parseNatTable(tableText(rules), 'gen').text;
        expect(roundTripThroughKernel(text)).toBe(text);
      }),
      { numRuns: 12, seed: 20261127 },
    );
  });
});

if (missing.length > 0) it.skip(`kernel iptables comparison skipped: ${reason}`, () => {});
