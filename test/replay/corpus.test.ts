// The replay corpus in CI: every entry through every available engine (model, core, and the
// kernel when running as root with its tools), against the saved expected outputs.
import { describe, expect, it } from 'vitest';
import { availableEngines, loadManifest, verifyCorpus } from '../../src/diff/replay/corpus.ts';

const { engines, skipped } = await availableEngines();

describe.skipIf(engines.length === 0)(
  `natlab corpus verify on ${engines.join(', ')}${skipped.length ? ` (skipped: ${skipped.join('; ')})` : ''}`,
  () => {
    it('the manifest loads and names each input once', async () => {
      const entries = await loadManifest();
      expect(entries.length).toBeGreaterThanOrEqual(20);
      expect(new Set(entries.map((e) => e.input)).size).toBe(entries.length);
      expect(entries.filter((e) => e.kind === 'generated').map((e) => e.name)).toEqual(
        expect.arrayContaining(['tcp-sessions', 'dns-udp', 'ping', 'traceroute', 'icmp-unreachable', 'port-collision']),
      );
    });

    it('every entry: engines agree and nothing changed from the saved expected outputs', async () => {
      // CI always has the shared corpora beside the clone: there a missing folder is a failure.
      // Four entries at a time: the kernel engine's namespace set-up and real-time waits overlap.
      const res = await verifyCorpus({ engines, requireShared: process.env.CI === 'true', parallel: 4 });
      const skippedEntries = res.entries.filter((e) => e.skipped);
      if (skippedEntries.length)
        process.stdout.write(
          `corpus: ${skippedEntries.length} real-capture entries skipped: ${skippedEntries[0].skipped}\n`,
        );
      expect(res.entries.length - skippedEntries.length).toBeGreaterThanOrEqual(7);
      const failed = res.entries
        .filter((e) => !e.ok)
        .map((e) => `${e.name}:\n  ${e.problems.slice(0, 5).join('\n  ')}`);
      expect(failed, failed.join('\n')).toEqual([]);
    }, 600_000);
  },
);

describe.skipIf(!engines.includes('model'))('corpus verify catches changes', () => {
  it('a changed expected output and a changed generated input both fail', async () => {
    const { mkdtemp, cp, readFile, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { CORPORA_DIR } = await import('../../src/diff/replay/corpus.ts');
    const root = await mkdtemp(join(tmpdir(), 'natlab-corpus-root-'));
    try {
      await cp(join(CORPORA_DIR, 'generated', 'ping'), join(root, 'generated', 'ping'), { recursive: true });
      const entry =
        '  - { name: ping, kind: generated, generator: ping, input: generated/ping/input.pcap, scenario: vpc-nat-instance-open }\n';
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
      expect(changed.entries[0].problems.join()).toMatch(
        /internet\.pcap changed from the saved expected output: packet #\d+/,
      );
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

describe.skipIf(!engines.includes('model'))('corpus verify --parallel', () => {
  it('reports the same outcomes, in manifest order, as one entry at a time', async () => {
    const only = ['tcp-sessions', 'dns-udp', 'ping', 'traceroute', 'icmp-unreachable', 'port-collision'];
    const seen: string[] = [];
    const par = await verifyCorpus({ engines: ['model'], only, parallel: 3, onEntry: (o) => seen.push(o.name) });
    const seq = await verifyCorpus({ engines: ['model'], only });
    expect(seen).toEqual(seq.entries.map((e) => e.name));
    expect(par.entries.map((e) => [e.name, e.ok, e.packets, e.problems])).toEqual(
      seq.entries.map((e) => [e.name, e.ok, e.packets, e.problems]),
    );
    expect(par.entries.every((e) => e.seconds > 0)).toBe(true);
  }, 120_000);
});

describe.skipIf(!engines.includes('model'))('corpus verify without the shared corpora', () => {
  it('skips the real-capture entries with the reason, runs the generated ones; --require-shared fails them', async () => {
    const saved = process.env.NATLAB_SHARED_CORPORA;
    process.env.NATLAB_SHARED_CORPORA = '/nonexistent/natlab-shared-corpora';
    try {
      const entries = await loadManifest();
      const real = entries.find((e) => e.input.startsWith('shared:'))!;
      const gen = entries.find((e) => e.kind === 'generated')!;
      const res = await verifyCorpus({ engines: ['model'], only: [real.name, gen.name] });
      const r = res.entries.find((e) => e.name === real.name)!;
      const g = res.entries.find((e) => e.name === gen.name)!;
      expect(r.skipped).toMatch(/\/nonexistent\/natlab-shared-corpora does not exist/);
      expect(r.ok).toBe(true);
      expect(g.skipped).toBeUndefined();
      expect(g.packets).toBeGreaterThan(0);
      expect(res.ok).toBe(true);
      const strict = await verifyCorpus({ engines: ['model'], only: [real.name], requireShared: true });
      expect(strict.ok).toBe(false);
      expect(strict.entries[0].problems.join('\n')).toMatch(/not found/);
    } finally {
      if (saved === undefined) delete process.env.NATLAB_SHARED_CORPORA;
      else process.env.NATLAB_SHARED_CORPORA = saved;
    }
  }, 120_000);
});
