// `natlab pcap info FILE...`: a capinfos for natlab — what each capture is (format, byte order,
// link types, timestamp resolution, packets, time span) and how natlab's parser sees its packets.
import { EXIT_OK, EXIT_USAGE, type Command } from './command.ts';
import { UsageError, parseArgs } from './args.ts';
import { InputError } from '../spec/errors.ts';
import { formatTimestamp, summarizeCapture, type CaptureSummary } from '../pcap/summary.ts';

const USAGE = `usage: natlab pcap info [--json] [--strict-snaplen] FILE...

Describes capture files (classic pcap, micro- or nanosecond, either byte order; pcapng):
format, byte order, version, link types, timestamp resolution, snapshot length, packet count,
first/last timestamp, a count of packets per natlab parse status and per L4 protocol, bad L4
checksums, and warnings (truncated final record, invalid timestamps, ...).

options:
  --json            one JSON object per file, as a JSON array on stdout
  --strict-snaplen  a record longer than the snapshot length is an error, not a warning

exit: 0 all files read; 2 a file could not be read (its error is printed, the other files are
still described) or usage error.
`;

function counts(m: Record<string, number>): string {
  const e = Object.entries(m).sort((a, b) => b[1] - a[1]);
  return e.length ? e.map(([k, n]) => `${k} ${n}`).join(', ') : '-';
}

/** Microsecond digits when every interface is microsecond, else nanosecond digits. */
function printResolution(s: CaptureSummary): string {
  return s.info.interfaces.every((f) => f.tsResolution === 'us') ? 'us' : 'ns';
}

function text(s: CaptureSummary): string {
  const i = s.info;
  const lts = i.linkTypes.map((lt, k) => `${i.linkTypeNames[k]} (${lt})`).join(', ') || '-';
  const resName = (r: string) => (r === 'us' ? 'microseconds' : r === 'ns' ? 'nanoseconds' : `${r} s`);
  const resList = [...new Set(i.interfaces.map((f) => f.tsResolution))];
  const res = resList.length > 1 ? `mixed: ${resList.map(resName).join(', ')}` : resName(i.tsResolution);
  const fracRes = printResolution(s);
  const lines = [
    `${s.file}:`,
    `  format:           ${i.format} ${i.version}, ${i.byteOrder === 'LE' ? 'little' : 'big'}-endian` +
      (i.format === 'pcapng'
        ? `, ${i.sections} section(s), ${i.interfaces.length} interface(s)` +
          (i.skippedBlocks ? `, ${i.skippedBlocks} block(s) skipped` : '')
        : ''),
    `  link type:        ${lts}`,
    ...(i.format === 'pcapng' && (i.interfaces.length > 1 || i.interfaces.some((f) => f.name))
      ? i.interfaces.map(
          (f, k) =>
            `  interface ${k}:      ${f.name || '-'}, ${f.linkTypeName} (${f.linkType}), snaplen ${f.snapLen || 'unlimited'}, ${f.tsResolution}` +
            (f.fcsLen ? `, FCS ${f.fcsLen} bytes` : ''),
        )
      : []),
    `  timestamps:       ${res}`,
    `  snapshot length:  ${i.snapLen === 0 ? 'unlimited' : i.snapLen}`,
    `  packets:          ${s.packets}${s.truncatedRecords ? ` (${s.truncatedRecords} cut by the snapshot length)` : ''}`,
    `  bytes:            ${s.bytesCaptured} captured, ${s.bytesOnWire} on the wire`,
  ];
  if (s.first && s.last) {
    const dur = s.last.sec - s.first.sec + (s.last.nsec - s.first.nsec) / 1e9;
    lines.push(`  first packet:     ${formatTimestamp(s.first.sec, s.first.nsec, fracRes)}`);
    lines.push(`  last packet:      ${formatTimestamp(s.last.sec, s.last.nsec, fracRes)}`);
    lines.push(
      `  duration:         ${dur.toFixed(6)} s${s.outOfOrder ? ` (${s.outOfOrder} timestamp(s) go backwards)` : ''}`,
    );
  }
  lines.push(`  parse status:     ${counts(s.parseStatus)}`);
  lines.push(`  L4 protocols:     ${counts(s.l4)}`);
  if (Object.keys(s.notIpv4).length) lines.push(`  not IPv4:         ${counts(s.notIpv4)}`);
  lines.push(`  bad L4 checksum:  ${s.badL4Checksum}`);
  for (const w of s.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n');
}

function json(s: CaptureSummary): object {
  const i = s.info;
  return {
    file: s.file,
    ok: true,
    format: i.format,
    byteOrder: i.byteOrder,
    version: i.version,
    linkTypes: i.linkTypes.map((lt, k) => ({ number: lt, name: i.linkTypeNames[k] })),
    tsResolution: i.tsResolution,
    snapLen: i.snapLen,
    sections: i.sections,
    interfaces: i.interfaces,
    skippedBlocks: i.skippedBlocks,
    packets: s.packets,
    bytesCaptured: s.bytesCaptured,
    bytesOnWire: s.bytesOnWire,
    truncatedRecords: s.truncatedRecords,
    first: s.first && { ...s.first, iso: formatTimestamp(s.first.sec, s.first.nsec, printResolution(s)) },
    last: s.last && { ...s.last, iso: formatTimestamp(s.last.sec, s.last.nsec, printResolution(s)) },
    outOfOrder: s.outOfOrder,
    parseStatus: s.parseStatus,
    l4: s.l4,
    notIpv4: s.notIpv4,
    badL4Checksum: s.badL4Checksum,
    warnings: s.warnings,
  };
}

export const command: Command = {
  name: 'pcap info',
  summary: 'describe capture files: format, link type, timestamps, packets per parse status',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub !== 'info') throw new UsageError(sub ? `unknown pcap subcommand '${sub}'` : 'missing subcommand (info)');
    const args = parseArgs(rest, { flags: ['json', 'strict-snaplen'] });
    if (args.positional.length === 0) throw new UsageError('no capture files given');
    const asJson = args.flags.has('json');
    const out: object[] = [];
    let failed = 0;
    for (const file of args.positional) {
      try {
        const s = await summarizeCapture(file, { strictSnapLen: args.flags.has('strict-snaplen') });
        if (asJson) out.push(json(s));
        else process.stdout.write(`${text(s)}\n`);
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        failed++;
        process.stderr.write(`natlab pcap info: ${e.message}\n`);
        if (asJson) out.push({ file, ok: false, error: e.message });
      }
    }
    if (asJson) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return failed ? EXIT_USAGE : EXIT_OK;
  },
};
