// The CLI-misuse table: every wrong way to call natlab gets exit 2 and a clear message before any
// work, never a stack trace. In-process (main(), the code path bin/natlab.mjs runs). docs/errors.md.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runInProcess, STACK_TRACE_RE } from '../helpers/cli.ts';

const PCAP = 'corpora/generated/icmp-unreachable/input.pcap';
const tmp = mkdtempSync(join(tmpdir(), 'natlab-misuse-'));
const aFile = join(tmp, 'a-file');
writeFileSync(aFile, 'x');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Case {
  argv: string[];
  code: number;
  /** stderr (exit 2) or stdout (exit 0) must match. */
  says: RegExp;
}

const CASES: Case[] = [
  // general
  { argv: [], code: 2, says: /usage: natlab <command>/ },
  { argv: ['--version'], code: 0, says: /^natlab \d+\.\d+\.\d+ \(node / },
  { argv: ['--version', 'x'], code: 2, says: /takes no arguments/ },
  { argv: ['help', 'replay'], code: 0, says: /^usage: natlab replay --in/ },
  { argv: ['help', 'pcap'], code: 0, says: /^usage: natlab pcap info/ },
  { argv: ['help', 'nosuch'], code: 2, says: /unknown command 'nosuch'/ },
  { argv: ['frobnicate'], code: 2, says: /unknown command 'frobnicate'/ },
  { argv: ['x'.repeat(5000)], code: 2, says: /unknown command 'x{60}… \(5000 characters\)'/ },
  // generic option parsing (src/cli/args.ts)
  { argv: ['replay', '--in', PCAP, '--in', PCAP, '--out', tmp], code: 2, says: /option --in given twice/ },
  { argv: ['replay', '--json', '--json', '--in', PCAP, '--out', tmp], code: 2, says: /option --json given twice/ },
  { argv: ['replay', '--bogus'], code: 2, says: /unknown option --bogus/ },
  { argv: ['replay', '--in'], code: 2, says: /option --in needs a value/ },
  { argv: ['replay', '--json=yes'], code: 2, says: /option --json takes no value/ },
  { argv: ['replay', '--in', PCAP, '--out', tmp, '--seed', 'abc'], code: 2, says: /--seed: 'abc' is not an integer/ },
  {
    argv: ['replay', '--in', PCAP, '--out', tmp, '--seed', '\x1b[31m'],
    code: 2,
    says: /--seed: '\\x1b\[31m' is not an integer/,
  },
  { argv: ['replay', '--in', PCAP, '--out', tmp, '--limit', '0'], code: 2, says: /--limit: 0 is outside/ },
  { argv: ['replay', 'stray', '--in', PCAP, '--out', tmp], code: 2, says: /unexpected argument 'stray'/ },
  // replay
  { argv: ['replay', '--out', tmp], code: 2, says: /--in FILE is required/ },
  { argv: ['replay', '--in', PCAP], code: 2, says: /--out DIR is required/ },
  {
    argv: ['replay', '--in', '/nonexistent.pcap', '--out', tmp],
    code: 2,
    says: /--in: \/nonexistent.pcap: no such file/,
  },
  { argv: ['replay', '--in', tmp, '--out', tmp], code: 2, says: /--in: .* is a directory, not a file/ },
  { argv: ['replay', '--in', PCAP, '--out', aFile], code: 2, says: /--out: .*a-file exists and is not a directory/ },
  {
    argv: ['replay', '--in', PCAP, '--out', join(aFile, 'sub', 'dir')],
    code: 2,
    says: /a-file is a file, not a directory/,
  },
  {
    argv: ['replay', '--in', PCAP, '--out', '/proc/natlab-x'],
    code: 2,
    says: /--out: \/proc is on the proc filesystem/,
  },
  { argv: ['replay', '--in', PCAP, '--out', '/sys/natlab/x'], code: 2, says: /sysfs filesystem/ },
  {
    argv: ['replay', '--in', PCAP, '--out', tmp, '--engines', 'model,quantum'],
    code: 2,
    says: /unknown engine 'quantum'/,
  },
  { argv: ['replay', '--in', PCAP, '--out', tmp, '--engines', 'model,model'], code: 2, says: /given twice/ },
  {
    argv: ['replay', '--in', PCAP, '--out', tmp, '--scenario', 'x', '--inside', '10.0.0.0/8'],
    code: 2,
    says: /exclude each other/,
  },
  { argv: ['replay', '--in', PCAP, '--out', tmp, '--link', 'tokenring'], code: 2, says: /--link: 'tokenring'/ },
  { argv: ['replay', '--in', PCAP, '--out', tmp, '--kernel-time', 'slow'], code: 2, says: /--kernel-time: 'slow'/ },
  {
    argv: ['replay', '--in', PCAP, '--out', tmp, '--kernel-time', 'compress', '--kernel-max-wait', '5'],
    code: 2,
    says: /--kernel-max-wait applies to --kernel-time real/,
  },
  {
    argv: ['replay', '--in', PCAP, '--out', tmp, '--inside', 'banana'],
    code: 2,
    says: /--inside: 'banana' is not an IPv4 CIDR/,
  },
  {
    argv: ['replay', '--in', PCAP, '--out', tmp, '--scenario', '/nonexistent.yaml'],
    code: 2,
    says: /cannot read scenario file \(no such file\)/,
  },
  {
    argv: ['replay', '--in', PCAP, '--out', tmp, '--scenario', PCAP],
    code: 2,
    says: /is a capture \(pcap\/pcapng\), not a scenario file/,
  },
  {
    argv: ['replay', '--in', 'README.md', '--out', tmp],
    code: 2,
    says: /README.md: file header: unknown magic number/,
  },
  // kernel: location checks come before the prerequisites and the run
  {
    argv: ['kernel', '--in', PCAP, '--out', '/proc/natlab-x'],
    code: 2,
    says: /--out \/proc\/natlab-x: not a place for output files/,
  },
  { argv: ['kernel', '--in', PCAP, '--out', aFile], code: 2, says: /exists and is not a directory/ },
  {
    argv: ['kernel', '--in', '/nonexistent.pcap', '--out', tmp],
    code: 2,
    says: /--in: \/nonexistent.pcap: no such file/,
  },
  {
    argv: ['kernel', '--in', PCAP, '--out', tmp, '--time', 'warp'],
    code: 2,
    says: /--time: 'warp' is not real or compress/,
  },
  // bench: every input before the first benchmark
  { argv: ['bench', '--quick', '--pcap', '/nonexistent'], code: 2, says: /--pcap: \/nonexistent: no such file/ },
  { argv: ['bench', '--quick', '--pcap', 'README.md'], code: 2, says: /README.md: file header: unknown magic number/ },
  {
    argv: ['bench', '--quick', '--pcap', PCAP, '--inside', 'nope'],
    code: 2,
    says: /--inside: 'nope' is not an IPv4 CIDR/,
  },
  { argv: ['bench', '--quick', '--inside', '10.0.0.0/8'], code: 2, says: /--inside only applies with --pcap/ },
  { argv: ['bench', '--quick', '--out', '/proc/natlab-x'], code: 2, says: /--out: \/proc is on the proc filesystem/ },
  { argv: ['bench', '--quick', '--json', tmp], code: 2, says: /--json: .* is a directory, not a file/ },
  { argv: ['bench', '--quick', '--json', join(aFile, 'r.json')], code: 2, says: /a-file is a file, not a directory/ },
  { argv: ['bench', '--quick', '--workloads', 'warp'], code: 2, says: /unknown workload 'warp'/ },
  { argv: ['bench', '--quick', '--sessions', 'lots'], code: 2, says: /--sessions: 'lots' is not a count/ },
  { argv: ['bench', '--quick', '--profile', '/nonexistent.yaml'], code: 2, says: /nonexistent/ },
  { argv: ['bench', 'compare', 'a.json'], code: 2, says: /compare needs two result files/ },
  {
    argv: ['bench', 'report', PCAP, '--out', '/proc/natlab-x'],
    code: 2,
    says: /--out: \/proc is on the proc filesystem/,
  },
  // a capture given as a result file: the JSON error quotes it escaped, never raw bytes
  { argv: ['bench', 'report', PCAP, '--out', tmp], code: 2, says: /not JSON: .*\\ufffd/ },
  // fuzz
  { argv: ['fuzz', '--run', '5'], code: 2, says: /--run R needs --seed X/ },
  {
    argv: ['fuzz', '--seed', '1', '--runs', '1', '--save-dir', '/proc/natlab-x'],
    code: 2,
    says: /--save-dir: \/proc is on the proc filesystem/,
  },
  { argv: ['fuzz', '--seed', '1', '--runs', '1', '--save-dir', aFile], code: 2, says: /exists and is not a directory/ },
  { argv: ['fuzz', '--no-save', '--save-dir', tmp], code: 2, says: /exclude each other/ },
  { argv: ['fuzz', '--seed', '1', '--seed', '2'], code: 2, says: /option --seed given twice/ },
  {
    argv: ['fuzz', '--seed', '1', '--runs', '1', '--junit', '/proc/natlab.xml'],
    code: 2,
    says: /--junit: \/proc is on the proc filesystem/,
  },
  {
    argv: ['replay', '--in', PCAP, '--out', tmp, '--junit', tmp],
    code: 2,
    says: /--junit: .* is a directory, not a file/,
  },
  // corpus, scenario, pcap, trace
  { argv: ['corpus', 'verify', '--junit', join(aFile, 'x.xml')], code: 2, says: /a-file is a file, not a directory/ },
  { argv: ['corpus'], code: 2, says: /verify or list/ },
  { argv: ['corpus', 'frob'], code: 2, says: /unknown subcommand 'frob'/ },
  { argv: ['scenario'], code: 2, says: /missing subcommand/ },
  { argv: ['scenario', 'check', '/nonexistent.yaml'], code: 2, says: /no such file/ },
  { argv: ['scenario', 'check', PCAP], code: 2, says: /is a capture/ },
  { argv: ['scenario', 'check', tmp], code: 2, says: /cannot read scenario file \(a directory\)/ },
  {
    argv: ['scenario', 'import', '/nonexistent.json', '--out', '/proc/natlab.yaml'],
    code: 2,
    says: /--out: \/proc is on the proc filesystem/,
  },
  {
    argv: ['scenario', 'import', '/nonexistent.json', '--out', tmp],
    code: 2,
    says: /--out: .* is a directory, not a file/,
  },
  { argv: ['pcap', 'info', '/nonexistent.pcap'], code: 2, says: /nonexistent/ },
  { argv: ['pcap', 'info', 'README.md'], code: 2, says: /unknown magic number/ },
  { argv: ['trace', 'not a packet'], code: 2, says: /./ },
];

describe('CLI misuse table: exit 2 and one clear line, before any work', () => {
  it.each(CASES.map((c) => [c.argv.join(' ').slice(0, 100), c] as const))(
    'natlab %s',
    async (_name, c) => {
      const r = await runInProcess(c.argv);
      expect(r.crash).toBeNull();
      expect(r.code).toBe(c.code);
      const text = c.code === 0 ? r.stdout : r.stderr;
      expect(text).toMatch(c.says);
      expect(r.stderr).not.toMatch(STACK_TRACE_RE);
      // Nothing ran: no output files, no benchmark table, no replay summary.
      if (c.code === 2) expect(r.stdout).toBe('');
      // The message itself is one line (usage errors append the command's usage after a blank line).
      const first = r.stderr.split('\n\n')[0];
      if (c.code === 2) expect(first.length).toBeLessThan(600);
      // No raw control bytes or undecodable input reach the terminal.
      expect(r.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f\ufffd]/);
    },
    60_000,
  );
});
