// `natlab verify`: captures from both sides of a real NAT box, its frames predicted by an engine
// (the model by default; --engines kernel for "Linux with this config") and compared packet by
// packet (src/diff/verify/, docs/verify.md).
import { writeFileSync } from 'node:fs';
import { EXIT_DIFF, EXIT_OK, EXIT_USAGE, type Command } from './command.ts';
import { parseArgs, intOption, UsageError } from './args.ts';
import { loadScenario, resolveScenarioPath, scenarioToYaml } from '../scenario/index.ts';
import { readCidr, readIpv4 } from '../scenario/addr-text.ts';
import { engineAvailability, makeEngine, parseEngineName, type EngineName } from '../diff/engines.ts';
import { formatVerifyReport, readSplitSides, readTwoSides, runVerify, verifyPassed } from '../diff/verify/index.ts';
import type { Cidr } from '../spec/scenario.ts';

const USAGE = `usage: natlab verify --inside IN.pcap --outside OUT.pcap [--scenario F] [options]
       natlab verify --in BOTH.pcap --inside CIDR[,CIDR] [--scenario F] [options]

Does a real NAT box behave like Linux with this config, and where exactly does it not? Give
captures of both sides of the box: one file per side, or one file holding both (tcpdump -i any
on the box). The frames the box received — inside hosts sending, the internet answering — go
through an engine (the model; --engines kernel: the real Linux kernel with the scenario's config);
every frame it predicts the box sends is paired with a frame the box really sent on that side, by
flow and order (the box's port choices learnt as a consistent renaming), in capture-time order,
then compared byte for byte. Reported per packet: matched byte-identical, matched with named field
differences (tcp.sport, ip.id, ip.ttl, tcp.mss, checksums, ...), predicted but not seen, seen but
not predicted; then what the box does that the scenario does not say, with the scenario change.

One capture holding both sides is split (and says how): a pcapng whose interfaces are named
inside/lan and outside/wan by interface; otherwise by address (--inside CIDRs): a frame with an inside
source or destination was seen on the inside, any other on the outside, and a frame seen twice
(the same packet, TTL one lower: forwarded untranslated) is on its arrival side first.

options:
  --inside F        the capture of the box's inside interface (with --outside)
  --outside F       the capture of its outside interface
  --in F            one capture holding both sides; then --inside CIDRs names the inside
                    networks (not needed when its pcapng interfaces are named inside/outside)
  --inside-net CIDRs  with two files: the inside networks (comma-separated; default: the inside
                    capture's addresses the outside capture never shows)
  --public ADDR     the box's outside address (default: the address in the most outside frames
                    that never appears inside)
  --scenario F      a scenario whose NAT instance has the box's outside address as Elastic IP;
                    default: one built around the capture (inside hosts behind a NAT instance
                    with configure-pat's MASQUERADE, the box's address as its Elastic IP)
  --save-scenario F write the scenario used as YAML (edit it — e.g. add the suggested mangle
                    rule — and verify again with --scenario F)
  --engines E       model (default), core or kernel (one engine)
  --window MS       how far apart a frame and the input it answers may be (default 2000 ms)
  --limit N         packets listed in the text report (default 50)
  --json            the report as JSON: sides, counts, every packet's verdict and fields, findings

Frames outside the window both captures cover are reported, never counted as misses.
exit: 0 every frame from the box matches the prediction; 1 differences; 2 bad input.
`;

function readCidrList(text: string): Cidr[] {
  return text
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map((t) => {
      const c = readCidr(t);
      if (typeof c === 'string') throw new UsageError(`inside networks: ${c}`);
      return c.cidr;
    });
}

export const command: Command = {
  name: 'verify',
  summary: 'a real NAT box against Linux: captures of both sides, every frame predicted and compared',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const a = parseArgs(argv, {
      flags: ['json'],
      values: [
        'inside',
        'outside',
        'in',
        'inside-net',
        'public',
        'scenario',
        'save-scenario',
        'engines',
        'window',
        'limit',
      ],
    });
    if (a.positional.length) throw new UsageError(`unexpected argument '${a.positional[0]}'`);
    const two = !a.values.has('in');
    if (!two && a.values.has('outside')) throw new UsageError('give --inside IN --outside OUT, or --in BOTH: not both');
    if (!two && a.values.has('inside') && a.values.has('inside-net'))
      throw new UsageError('with --in, --inside and --inside-net both name the inside networks: give one');
    if (two && !(a.values.has('inside') && a.values.has('outside')))
      throw new UsageError(
        'give --inside IN --outside OUT (one capture per side of the box), or --in BOTH --inside CIDRS',
      );
    let engineName: EngineName = 'model';
    if (a.values.has('engines')) {
      const list = a.values
        .get('engines')!
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
      if (list.length !== 1) throw new UsageError('--engines: verify runs one engine (model, core or kernel)');
      try {
        engineName = parseEngineName(list[0]);
      } catch (e) {
        throw new UsageError(`--engines: ${(e as Error).message}`);
      }
    }
    const av = await engineAvailability(engineName);
    if (!av.ok) {
      process.stderr.write(`natlab verify: the ${engineName} engine cannot run here: ${av.missing}\n`);
      return EXIT_USAGE;
    }
    const netText = two ? a.values.get('inside-net') : (a.values.get('inside') ?? a.values.get('inside-net'));
    const insideNet = netText !== undefined ? readCidrList(netText) : [];
    let publicAddr: number | undefined;
    if (a.values.has('public')) {
      const p = readIpv4(a.values.get('public')!);
      if (p === null) throw new UsageError(`--public: '${a.values.get('public')}' is not an IPv4 address`);
      publicAddr = p;
    }
    const windowUs = intOption(a, 'window', 2000, 0, 3_600_000) * 1000;
    const limit = intOption(a, 'limit', 50, 0, 1_000_000);
    const sides = two
      ? await readTwoSides(a.values.get('inside')!, a.values.get('outside')!)
      : await readSplitSides(a.values.get('in')!, insideNet);
    const scenario = a.values.has('scenario') ? loadScenario(resolveScenarioPath(a.values.get('scenario'))) : null;
    let used = scenario;
    const report = await runVerify({
      sides,
      inside: insideNet,
      scenario,
      publicAddr,
      engineName,
      windowUs,
      makeEngine: async (s) => {
        used = s;
        return await makeEngine(engineName, s, { seed: 1, workers: 1 });
      },
    });
    if (a.values.has('save-scenario') && used) writeFileSync(a.values.get('save-scenario')!, scenarioToYaml(used));
    process.stdout.write(
      a.flags.has('json') ? `${JSON.stringify(report, null, 2)}\n` : formatVerifyReport(report, limit),
    );
    return verifyPassed(report) ? EXIT_OK : EXIT_DIFF;
  },
};
