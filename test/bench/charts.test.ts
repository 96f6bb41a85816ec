// The bench charts answer the question "how far from the goal": the committed run's throughput
// chart carries the targets and the anchors' published figures as labelled lines, the setup chart
// plots setup rate against the table size with its target, every SVG is well-formed XML (xmllint
// where installed), and results/README.md lists each reference line with its source.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readReport } from '../../bench/report.ts';
import { setupChart, throughputChart } from '../../bench/svg.ts';
import { REFERENCES } from '../../bench/references.ts';
import { writeReadmeAndCharts } from '../../bench/output.ts';

const RESULTS = join(import.meta.dirname, '..', '..', 'results');
const latest = readdirSync(RESULTS)
  .filter((f) => /^bench-.*\.json$/.test(f))
  .sort()
  .at(-1)!;
const HAVE_XMLLINT = spawnSync('xmllint', ['--version']).status === 0;

function wellFormed(svg: string): string {
  if (!HAVE_XMLLINT) return '';
  const dir = mkdtempSync(join(tmpdir(), 'natlab-svg-'));
  try {
    const p = join(dir, 'x.svg');
    writeFileSync(p, svg);
    const r = spawnSync('xmllint', ['--noout', p], { encoding: 'utf8' });
    return r.status === 0 ? '' : r.stderr;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe(`bench charts of ${latest}`, () => {
  it('throughput: targets per session count and anchors as labelled lines', async () => {
    const svg = throughputChart(await readReport(join(RESULTS, latest)))!;
    expect(wellFormed(svg)).toBe('');
    // the target line, its labelled points 15 / 5 / 3 Mpps
    expect(svg).toContain('target, 1 worker');
    for (const v of ['15', '5', '3']) expect(svg).toMatch(new RegExp(`fill="#b00020">${v}</text>`));
    // the anchors: the translate-only loop per session count, the published single figures as lines
    expect(svg).toContain('translate-only loop');
    expect(svg).toContain('verified C NAT, DPDK (4.9)');
    expect(svg).toContain('ixy.js forwarding, no NAT (5)');
    expect((svg.match(/class="ref"/g) ?? []).length).toBe(2);
    // the y axis reaches the highest reference (32 Mpps): the gap is visible
    expect(svg).toMatch(/>40<\/text>/);
  });

  it('setup: rate against the table size, with the target', async () => {
    const r = await readReport(join(RESULTS, latest));
    const svg = setupChart(r)!;
    expect(svg).not.toBeNull();
    expect(wellFormed(svg)).toBe('');
    expect(svg).toContain('Session setup rate vs conntrack table size');
    for (const x of ['80k', '112k', '144k', '176k', '208k']) expect(svg).toContain(`>${x}</text>`);
    expect(svg).toContain('target per worker (1000)');
    expect(svg).toContain('core, 2 workers');
  });

  it('README lists every reference line with its source', async () => {
    const out = mkdtempSync(join(tmpdir(), 'natlab-readme-'));
    try {
      const report = await readReport(join(RESULTS, latest));
      const files = await writeReadmeAndCharts(report, out, latest);
      // latency.svg exists for runs that recorded per-batch latency (from 4 Dec 2026 on).
      const latency = report.results.some((r) => r.latency !== undefined) ? ['latency.svg'] : [];
      expect(files.map((f) => f.split('/').pop())).toEqual([
        'throughput.svg',
        'scaling.svg',
        'setup.svg',
        ...latency,
        'README.md',
      ]);
      const readme = readFileSync(join(out, 'README.md'), 'utf8');
      expect(readme).toContain('![setup](setup.svg)');
      for (const ref of REFERENCES) expect(readme).toContain(`**${ref.kind}: ${ref.label}**`);
      expect(readme).toMatch(/Source: issue #4/);
      // The committed README is the one this code writes from the committed run.
      expect(readFileSync(join(RESULTS, 'README.md'), 'utf8')).toBe(readme);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
