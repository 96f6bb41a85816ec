// The kernel engine's "needs real waiting" error advises the options of the command the user ran:
// replay has --kernel-max-wait and --kernel-time compress (not kernel's --max-wait / --time).
// Needs the kernel engine (root, ip, iptables, conntrack); skipped, saying why, otherwise.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkKernelPrerequisites } from '../../src/oracle/index.ts';
import { buildUdp } from '../../src/packet/build.ts';
import { encodePcap } from '../../src/pcap/writer.ts';
import { LINKTYPE_RAW } from '../../src/packet/constants.ts';
import { parseIpv4Addr as ip } from '../../src/packet/addr.ts';
import { app } from '../helpers/builtin.ts';
import { runInProcess } from '../helpers/cli.ts';

const pre = await checkKernelPrerequisites();
const tmp = mkdtempSync(join(tmpdir(), 'natlab-kadvice-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!pre.ok)(
  `kernel engine advice names existing options${pre.ok ? '' : ` (skipped: ${pre.missing.join('; ')})`}`,
  () => {
    it("replay --engines kernel: a 5 s gap with --kernel-max-wait 1 advises replay's options", async () => {
      const cap = join(tmp, 'gap.pcap');
      const mk = (t: number) => ({
        tsSec: 1_700_000_000 + t,
        tsNsec: 0,
        data: buildUdp({ src: app, dst: ip('198.51.100.7'), sport: 40000, dport: 53 }),
      });
      writeFileSync(cap, encodePcap([mk(0), mk(5)], { linkType: LINKTYPE_RAW }));
      const r = await runInProcess([
        'replay',
        '--scenario',
        'vpc-nat-instance-open',
        '--in',
        cap,
        '--out',
        join(tmp, 'out'),
        '--engines',
        'model,kernel',
        '--kernel-max-wait',
        '1',
        '--no-progress',
      ]);
      expect(r.crash).toBeNull();
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/raise --kernel-max-wait or use --kernel-time compress/);
      expect(r.stderr).not.toMatch(/--max-wait|--time compress/);
    }, 120_000);
  },
);
