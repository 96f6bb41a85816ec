// JUnit XML (the Ant/Jenkins format every CI renders: GitHub Actions test reporters, GitLab's
// `artifacts:reports:junit`, Jenkins): <testsuites> of <testsuite> of <testcase>, a failing case
// carrying <failure message type>text</failure>. natlab's commands map onto it as:
//   natlab fuzz           one suite, one case per campaign shard (the failure: the shrunk
//                         counterexample, its saved path and the command that replays it)
//   natlab replay         one suite, one case per flow of the capture
//   natlab corpus verify  one suite, one case per corpus entry (skipped entries as <skipped>)
// The schema the tests validate against is test/helpers/junit.xsd.
import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';

export interface JUnitCase {
  name: string;
  classname: string;
  /** Seconds. */
  timeS?: number;
  failure?: { message: string; type: string; text: string };
  error?: { message: string; type: string; text: string };
  skipped?: string;
  /** Shown by CI next to the case (the replay command, the counterexample path, ...). */
  systemOut?: string;
}

export interface JUnitSuite {
  name: string;
  timeS?: number;
  /** ISO 8601 without time zone, as the Ant schema has it (default: now, UTC). */
  timestamp?: string;
  properties?: Record<string, string | number>;
  cases: JUnitCase[];
  systemOut?: string;
}

/** XML 1.0 text: escapes markup and drops characters XML cannot hold (controls, lone surrogates). */
export function xmlText(s: string): string {
  return s
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** An attribute value: as text, with line breaks kept as character references. */
function attr(s: string | number): string {
  return xmlText(String(s)).replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

function secs(t: number | undefined): string {
  return (t ?? 0).toFixed(3);
}

function isoNow(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, '');
}

/** The whole document. */
export function junitXml(suites: JUnitSuite[]): string {
  const L: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const count = (f: (c: JUnitCase) => boolean) => suites.reduce((a, s) => a + s.cases.filter(f).length, 0);
  const total = suites.reduce((a, s) => a + s.cases.length, 0);
  const time = suites.reduce((a, s) => a + (s.timeS ?? s.cases.reduce((b, c) => b + (c.timeS ?? 0), 0)), 0);
  L.push(
    `<testsuites name="natlab" tests="${total}" failures="${count((c) => !!c.failure)}" errors="${count((c) => !!c.error)}" skipped="${count((c) => c.skipped !== undefined)}" time="${secs(time)}">`,
  );
  suites.forEach((s, id) => {
    const failures = s.cases.filter((c) => c.failure).length;
    const errors = s.cases.filter((c) => c.error).length;
    const skipped = s.cases.filter((c) => c.skipped !== undefined).length;
    const t = s.timeS ?? s.cases.reduce((b, c) => b + (c.timeS ?? 0), 0);
    L.push(
      `  <testsuite name="${attr(s.name)}" tests="${s.cases.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${secs(t)}" timestamp="${attr(s.timestamp ?? isoNow())}" hostname="${attr(hostname() || 'localhost')}" id="${id}" package="natlab">`,
    );
    const props = Object.entries(s.properties ?? {});
    if (props.length) {
      L.push('    <properties>');
      for (const [k, v] of props) L.push(`      <property name="${attr(k)}" value="${attr(v)}"/>`);
      L.push('    </properties>');
    }
    for (const c of s.cases) {
      const head = `    <testcase name="${attr(c.name)}" classname="${attr(c.classname)}" time="${secs(c.timeS)}"`;
      const body: string[] = [];
      if (c.skipped !== undefined) body.push(`      <skipped message="${attr(c.skipped)}"/>`);
      if (c.failure)
        body.push(
          `      <failure message="${attr(c.failure.message)}" type="${attr(c.failure.type)}">${xmlText(c.failure.text)}</failure>`,
        );
      if (c.error)
        body.push(
          `      <error message="${attr(c.error.message)}" type="${attr(c.error.type)}">${xmlText(c.error.text)}</error>`,
        );
      if (c.systemOut) body.push(`      <system-out>${xmlText(c.systemOut)}</system-out>`);
      if (body.length === 0) L.push(`${head}/>`);
      else L.push(`${head}>`, ...body, '    </testcase>');
    }
    if (s.systemOut) L.push(`    <system-out>${xmlText(s.systemOut)}</system-out>`);
    L.push('  </testsuite>');
  });
  L.push('</testsuites>', '');
  return L.join('\n');
}

export async function writeJUnit(path: string, suites: JUnitSuite[]): Promise<void> {
  await writeFile(path, junitXml(suites));
}
