// The replay corpus in CI: every entry through every available engine (model, core, and the
// kernel when running as root with its tools), against the saved expected outputs.
import { describe, expect, it } from 'vitest';
import { availableEngines, loadManifest, verifyCorpus } from '../../src/diff/corpus.ts';

const { engines, skipped } = await availableEngines();

describe.skipIf(engines.length === 0)(`natlab corpus verify on ${engines.join(', ')}${skipped.length ? ` (skipped: ${skipped.join('; ')})` : ''}`, () => {
  it('the manifest loads and names each input once', async () => {
    const entries = await loadManifest();
    expect(entries.length).toBeGreaterThanOrEqual(20);
    expect(new Set(entries.map((e) => e.input)).size).toBe(entries.length);
    expect(entries.filter((e) => e.kind === 'generated').map((e) => e.name)).toEqual(
      expect.arrayContaining(['tcp-sessions', 'dns-udp', 'ping', 'traceroute', 'icmp-unreachable', 'port-collision']),
    );
  });

  it('every entry: engines agree and nothing changed from the saved expected outputs', async () => {
    const res = await verifyCorpus({ engines });
    const failed = res.entries.filter((e) => !e.ok).map((e) => `${e.name}:\n  ${e.problems.slice(0, 5).join('\n  ')}`);
    expect(failed, failed.join('\n')).toEqual([]);
  }, 600_000);
});

describe.skipIf(!engines.includes('model'))('corpus verify catches changes', () => {
  it('a changed expected output and a changed generated input both fail', async () => {
    const { mkdtemp, cp, readFile, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { CORPORA_DIR } = await import('../../src/diff/corpus.ts');
    const root = await mkdtemp(join(tmpdir(), 'natlab-corpus-root-'));
    try {
      await cp(join(CORPORA_DIR, 'generated', 'ping'), join(root, 'generated', 'ping'), { recursive: true });
      const entry = '  - { name: ping, kind: generated, generator: ping, input: generated/ping/input.pcap, scenario: builtin }\n';
      await writeFile(join(root, 'manifest.yaml'), `entries:\n${entry}`);
      const ok = await verifyCorpus({ engines: ['model'], root });
      expect(ok.entries[0].problems).toEqual([]);
      // flip one byte of the last packet of a saved output
      const f = join(root, 'generated', 'ping', 'expected', 'model', 'internet.pcap');
      const b = await readFile(f);
      b[b.length - 1] ^= 1;
      await writeFile(f, b);
      const changed = await verifyCorpus({ engines: ['model'], root });
      expect(changed.ok).toBe(false);
      expect(changed.entries[0].problems.join()).toMatch(/internet\.pcap changed from the saved expected output: packet #\d+/);
      // a generated input that is not what the generator writes
      const inp = join(root, 'generated', 'ping', 'input.pcap');
      const c = await readFile(inp);
      c[c.length - 1] ^= 1;
      await writeFile(inp, c);
      const gen = await verifyCorpus({ engines: ['model'], root });
      expect(gen.entries[0].problems.join()).toMatch(/differs from what generator 'ping' writes now/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }, 120_000);
});
