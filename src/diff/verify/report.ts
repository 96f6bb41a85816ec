// The verify report as text: sides, the window both captures cover, the verdicts, the packets
// that are not byte-identical (field by field), and what the box does that the scenario does not
// say. Cold path.

import type { FrameRef, PacketVerdict, VerifyReport } from './verify.ts';
import { VERDICT_DIFFERS, VERDICT_NOT_PREDICTED, VERDICT_NOT_SEEN, verifyPassed } from './verify.ts';

function when(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString().replace('T', ' ').replace('Z', '');
}

function at(f: FrameRef): string {
  return `${f.file} #${f.no}`;
}

function packetLine(p: PacketVerdict): string[] {
  const mark = p.inOverlap ? '' : ' [outside the window: not counted]';
  switch (p.kind) {
    case VERDICT_NOT_SEEN:
      return [
        `  - ${p.side}: predicted, not seen${mark}: ${p.predicted}`,
        `      from input ${at(p.input!)}${p.note ? ` (${p.note})` : ''}`,
      ];
    case VERDICT_NOT_PREDICTED:
      return [`  - ${p.side}: seen, not predicted${mark}: ${at(p.real!)} ${p.real!.text}`];
    default: {
      const main = p.fields.filter((f) => !f.derived);
      const derived = p.fields.filter((f) => f.derived).map((f) => f.field);
      return [
        `  - ${p.side}: ${at(p.real!)} differs${mark}: ${main.map((f) => `${f.field} ${f.predicted} → ${f.real}`).join(', ')}${derived.length ? ` (and so ${derived.join(', ')})` : ''}`,
        `      predicted ${p.predicted}  (input ${at(p.input!)})`,
      ];
    }
  }
}

export function formatVerifyReport(r: VerifyReport, limit = 50): string {
  const L: string[] = [];
  L.push(`natlab verify: the real box against ${r.engine} with scenario ${r.scenario}`);
  L.push(`  sides: ${r.how}`);
  L.push(
    `  box: outside address ${r.publicAddr}; inside hosts ${r.insideHosts.slice(0, 8).join(', ')}${r.insideHosts.length > 8 ? ` (+${r.insideHosts.length - 8})` : ''}`,
  );
  L.push(
    `  window both captures cover: ${when(r.overlap.fromUs)} .. ${when(r.overlap.toUs)} (${((r.overlap.toUs - r.overlap.fromUs) / 1e6).toFixed(3)} s)`,
  );
  for (const [k, n] of Object.entries(r.skipped)) L.push(`  skipped: ${n} frame(s): ${k}`);
  L.push('');
  L.push('                            inside  outside');
  const row = (name: string, a: number, b: number): void => {
    L.push(`  ${name.padEnd(24)}${String(a).padStart(8)}${String(b).padStart(9)}`);
  };
  const s = r.sides;
  row('frames', s.inside.frames, s.outside.frames);
  row('  to the box (inputs)', s.inside.inputs, s.outside.inputs);
  row('  from the box (outputs)', s.inside.outputs, s.outside.outputs);
  if (s.inside.unrelated + s.outside.unrelated) row('  neither (not used)', s.inside.unrelated, s.outside.unrelated);
  if (s.inside.outsideWindow + s.outside.outsideWindow)
    row('  outside the window', s.inside.outsideWindow, s.outside.outsideWindow);
  L.push('');
  L.push('  frames from the box, predicted vs seen:');
  const c = r.counts;
  const w = r.outsideWindow;
  const extra = (n: number): string => (n ? `   (+${n} outside the window)` : '');
  L.push(`    matched byte-identical      ${String(c.identical).padStart(6)}${extra(w.identical)}`);
  L.push(`    matched, fields differ      ${String(c.differs).padStart(6)}${extra(w.differs)}`);
  L.push(
    `    predicted, not seen         ${String(c['predicted-not-seen']).padStart(6)}${extra(w['predicted-not-seen'])}`,
  );
  L.push(
    `    seen, not predicted         ${String(c['seen-not-predicted']).padStart(6)}${extra(w['seen-not-predicted'])}`,
  );
  if (r.toTheBox)
    L.push(`    (${r.toTheBox} input(s) the engine delivers to the box itself: nothing to see on either side)`);
  if (r.flows)
    L.push(
      `    flows: ${r.flows}; the box's port differs from the engine's in ${r.renamedFlows} (learnt as a renaming)`,
    );
  const bad = r.packets.filter(
    (p) => p.kind === VERDICT_DIFFERS || p.kind === VERDICT_NOT_SEEN || p.kind === VERDICT_NOT_PREDICTED,
  );
  if (bad.length) {
    L.push('');
    L.push(`  packets that differ${bad.length > limit ? ` (first ${limit} of ${bad.length}; --json has all)` : ''}:`);
    for (const p of bad.slice(0, limit)) L.push(...packetLine(p));
  }
  if (r.findings.length) {
    L.push('');
    L.push('  what the box does that the scenario does not say:');
    for (const f of r.findings) {
      L.push(`  - ${f.what}`);
      if (f.suggestion) L.push(`      → ${f.suggestion}`);
    }
  }
  for (const wn of r.warnings.slice(0, 10)) L.push(`  warning: ${wn}`);
  if (r.warnings.length > 10) L.push(`  (${r.warnings.length - 10} more warnings in --json)`);
  L.push('');
  L.push(verifyPassed(r) ? '  VERIFIED: every frame from the box matches the prediction' : '  DIFFERENCES: see above');
  return `${L.join('\n')}\n`;
}
