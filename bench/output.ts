// Writes a benchmark report into a results directory: the JSON (one file per run, never
// overwritten), README.md with the latest tables, and the SVG charts.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchReport } from './suite.ts';
import { formatReadme } from './report.ts';
import { latencyChart, scalingChart, setupChart, throughputChart } from './svg.ts';

export const CHART_FILES = {
  throughput: 'throughput.svg',
  scaling: 'scaling.svg',
  setup: 'setup.svg',
  latency: 'latency.svg',
} as const;

/** README.md and the charts for `report` (whose JSON is `jsonName` in the same directory). */
export async function writeReadmeAndCharts(report: BenchReport, dir: string, jsonName: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  const charts: string[] = [];
  const t = throughputChart(report);
  if (t) {
    await writeFile(join(dir, CHART_FILES.throughput), t);
    charts.push(CHART_FILES.throughput);
  }
  const s = scalingChart(report);
  if (s) {
    await writeFile(join(dir, CHART_FILES.scaling), s);
    charts.push(CHART_FILES.scaling);
  }
  const st = setupChart(report);
  if (st) {
    await writeFile(join(dir, CHART_FILES.setup), st);
    charts.push(CHART_FILES.setup);
  }
  const l = latencyChart(report);
  if (l) {
    await writeFile(join(dir, CHART_FILES.latency), l);
    charts.push(CHART_FILES.latency);
  }
  files.push(...charts.map((c) => join(dir, c)));
  const readme = join(dir, 'README.md');
  await writeFile(readme, formatReadme(report, jsonName, charts));
  files.push(readme);
  return files;
}

/** bench-<date>.json + README.md + charts. Returns the files written. */
export async function writeBenchReport(report: BenchReport, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const name = `bench-${report.date.replace(/[:.]/g, '-')}.json`;
  const json = join(dir, name);
  await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
  return [json, ...(await writeReadmeAndCharts(report, dir, name))];
}
