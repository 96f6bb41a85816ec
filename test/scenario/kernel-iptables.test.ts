// Our canonical nat-table text must be what the real tools accept and print: load it with
// iptables-restore into a fresh network namespace and compare iptables-save's output line by line.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { parseNatTable } from '../../src/scenario/iptables.ts';
import { loadOpenScenario } from '../../src/scenario/builtin.ts';
import { natRuleArb, tableText } from './arbitraries.ts';

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const missing = [
  !isRoot && 'root',
  !have('unshare') && 'unshare',
  !have('iptables-restore') && 'iptables-restore',
  !have('iptables-save') && 'iptables-save',
].filter(Boolean);
const reason = missing.length ? `needs ${missing.join(', ')}` : '';

/** iptables-restore the text in a throwaway netns, return iptables-save -t nat without comment lines. */
function roundTripThroughKernel(text: string): string {
  const r = spawnSync('unshare', ['-n', 'sh', '-c', 'iptables-restore && iptables-save -t nat'], {
    input: text,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`iptables-restore failed (${r.status}): ${r.stderr}\n--- input ---\n${text}`);
  return `${r.stdout
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .join('\n')}\n`;
}

describe.skipIf(missing.length > 0)(
  `canonical nat text vs the real iptables${reason ? ` (skipped: ${reason})` : ''}`,
  () => {
    it('the built-in NAT instance table is accepted and printed back identically', () => {
      const text = loadOpenScenario().instances.find((i) => i.name === 'nat')!.nat!.text;
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

    // Rules natlab rejects because iptables does: the real iptables-restore must reject them too.
    const alsoRejectedByIptables = [
      '-A PREROUTING -j MASQUERADE',
      '-A PREROUTING -j SNAT --to-source 1.2.3.4',
      '-A POSTROUTING -j DNAT --to-destination 1.2.3.4',
      '-A PREROUTING -o eth0 -j ACCEPT',
      '-A INPUT -o eth0 -j ACCEPT',
      '-A POSTROUTING -i eth0 -j ACCEPT',
      '-A OUTPUT -i eth0 -j ACCEPT',
      '-A POSTROUTING -j MASQUERADE --to-ports 1024',
      '-A POSTROUTING -p gre -j SNAT --to-source 1.2.3.4:1000',
      '-A POSTROUTING -p udplite -j MASQUERADE --to-ports 1000',
      '-A POSTROUTING --dport 80 -j ACCEPT',
      '-A POSTROUTING -p tcp --dport 70000 -j ACCEPT',
      '-A POSTROUTING -j DROP',
      '-A POSTROUTING -j SNAT',
      '-A PREROUTING -j DNAT',
      '-A PREROUTING -j DNAT --to-destination 1.2.3.4 --random-fully',
      '-A POSTROUTING ! -p all -j MASQUERADE',
      '-A POSTROUTING -m comment -j ACCEPT',
      '-A POSTROUTING -p TCP -m TCP -j ACCEPT',
      '-A POSTROUTING -o eth0.veryverylongname -j MASQUERADE',
      '-A POSTROUTING -s 1.0.0.0/8 -s 2.0.0.0/8 -j ACCEPT',
    ];
    it.each(alsoRejectedByIptables)('iptables-restore rejects %s too', (rule) => {
      const text = `*nat\n${rule}\nCOMMIT\n`;
      expect(() => parseNatTable(text, 'r')).toThrow();
      const r = spawnSync('unshare', ['-n', 'iptables-restore'], { input: text, encoding: 'utf8' });
      expect(r.status, r.stderr).not.toBe(0);
    });
  },
);
