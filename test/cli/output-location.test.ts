// Output locations (src/cli/output-location.ts): read-only, full, special and non-directory
// places are refused before any work with one line and exit 2; a disk filling up mid-run is one
// line and exit 2 too (main.ts maps the write error). The mount cases run in a private mount
// namespace (unshare -m: the host's mounts are never touched) and need root.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkOutputFile, describeFsError, prepareOutputDir } from '../../src/cli/output-location.ts';
import { InputError } from '../../src/spec/errors.ts';
import { buildUdp } from '../../src/packet/build.ts';
import { encodePcap } from '../../src/pcap/writer.ts';
import { LINKTYPE_RAW } from '../../src/packet/constants.ts';
import { app } from '../helpers/builtin.ts';
import { parseIpv4Addr } from '../../src/packet/addr.ts';
import { NATLAB_BIN, STACK_TRACE_RE } from '../helpers/cli.ts';

const PCAP = 'corpora/generated/icmp-unreachable/input.pcap';
const tmp = mkdtempSync(join(tmpdir(), 'natlab-outloc-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;
const hasUnshare = isRoot && spawnSync('unshare', ['-m', '--propagation', 'private', 'true']).status === 0;
const hasSetpriv =
  isRoot && spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'true']).status === 0;

/** Runs `script` (sh) in a private mount namespace with $N = the natlab command. */
function inMountNs(script: string) {
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, N: `${process.execPath} ${NATLAB_BIN}` },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('prepareOutputDir / checkOutputFile', () => {
  it('creates missing parents, accepts an existing writable directory, leaves no probe behind', () => {
    const d = join(tmp, 'a', 'b', 'c');
    expect(prepareOutputDir(d, '--out')).toBe(d);
    expect(prepareOutputDir(d, '--out')).toBe(d);
    expect(spawnSync('ls', ['-A', d], { encoding: 'utf8' }).stdout).toBe('');
  });

  it('does not create with create=false, but still checks', () => {
    const d = join(tmp, 'not-created');
    prepareOutputDir(d, '--save-dir', false);
    expect(spawnSync('test', ['-e', d]).status).toBe(1);
    expect(() => prepareOutputDir('/proc/x', '--save-dir', false)).toThrow(/proc filesystem/);
  });

  it('refuses files, paths under files, special filesystems and empty paths with an InputError', () => {
    const f = join(tmp, 'file');
    writeFileSync(f, '');
    const cases: Array<[string, RegExp]> = [
      [f, /exists and is not a directory/],
      [join(f, 'x'), /file is a file, not a directory/],
      [join(f, 'x', 'y', 'z'), /file is a file, not a directory/],
      ['/proc/self/natlab', /proc filesystem/],
      ['/sys/fs/natlab', /sysfs filesystem/],
      ['', /empty path/],
    ];
    for (const [p, re] of cases) {
      let err: unknown = null;
      try {
        prepareOutputDir(p, '--out');
      } catch (e) {
        err = e;
      }
      expect(err, p).toBeInstanceOf(InputError);
      expect((err as Error).message, p).toMatch(re);
      expect((err as Error).message).toMatch(/^--out: /);
    }
    expect(() => checkOutputFile(tmp, '--json')).toThrow(/is a directory, not a file/);
    expect(() => checkOutputFile(join(f, 'r.json'), '--json')).toThrow(/is a file, not a directory/);
    expect(checkOutputFile(join(tmp, 'new', 'r.json'), '--json')).toMatch(/r\.json$/);
  });

  it('maps the errno codes of writes to one line; other errors are not file errors', () => {
    const mk = (code: string, syscall: string, path?: string) => Object.assign(new Error('x'), { code, syscall, path });
    expect(describeFsError(mk('ENOSPC', 'write'))).toBe('cannot write: no space left on device (ENOSPC)');
    expect(describeFsError(mk('EACCES', 'open', '/x/y'))).toBe('cannot write /x/y: permission denied (EACCES)');
    expect(describeFsError(mk('ENOTDIR', 'mkdir', '/f/x'))).toBe(
      'cannot write /f/x: a path component is not a directory (ENOTDIR)',
    );
    expect(describeFsError(mk('EEXIST', 'mkdir', '/d'))).toBe('cannot write /d: already exists (EEXIST)');
    expect(describeFsError(mk('EROFS', 'open', '/r'))).toMatch(/read-only filesystem \(EROFS\)/);
    expect(describeFsError(new TypeError('boom'))).toBeNull();
    expect(describeFsError(mk('EWHATEVER', 'open'))).toBeNull();
    expect(describeFsError('ENOSPC')).toBeNull();
  });
});

describe.skipIf(!hasUnshare)('output locations on real filesystems (private mount namespace)', () => {
  it('a read-only filesystem: exit 2, one line, nothing run', () => {
    const d = mkdtempSync(join(tmp, 'ro-'));
    const r = inMountNs(
      `mount -t tmpfs -o size=256k tmpfs ${d} && mount -o remount,ro ${d} && $N replay --in ${PCAP} --out ${d}/out`,
    );
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`natlab replay: --out: ${d} is not writable (EROFS)`);
    expect(r.stdout).toBe('');
  });

  it('a full disk: refused up front for replay and bench', () => {
    const d = mkdtempSync(join(tmp, 'full-'));
    const r = inMountNs(
      `mount -t tmpfs -o size=256k tmpfs ${d} && (head -c 300k /dev/zero > ${d}/fill 2>/dev/null; true) && ` +
        `$N replay --in ${PCAP} --out ${d}/out; echo "rc=$?"; $N bench --quick --json ${d}/b.json; echo "rc=$?"`,
    );
    expect(r.stdout).toBe('rc=2\nrc=2\n');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatch(/no space left on the filesystem of .* \(\d+ bytes free\)/);
  });

  it('a disk that fills up mid-run: one line naming the file, exit 2, no stack trace', () => {
    const d = mkdtempSync(join(tmp, 'fills-'));
    // 4000 UDP datagrams of 600 bytes out of the built-in scenario's app instance: ~2.5 MB of
    // output per engine, on a filesystem with ~1.2 MB free (above the up-front minimum).
    const pay = new Uint8Array(600);
    const recs = Array.from({ length: 4000 }, (_, i) => ({
      tsSec: 1_700_000_000,
      tsNsec: i * 1000,
      data: buildUdp({
        src: app,
        dst: parseIpv4Addr('198.51.100.7'),
        sport: 40000 + (i % 50),
        dport: 53,
        payload: pay,
      }),
    }));
    const cap = join(tmp, 'big.pcap');
    writeFileSync(cap, encodePcap(recs, { linkType: LINKTYPE_RAW }));
    const r = inMountNs(
      `mount -t tmpfs -o size=1200k tmpfs ${d} && $N replay --scenario vpc-nat-instance-open --in ${cap} --out ${d}/out --engines model`,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(STACK_TRACE_RE);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^natlab replay: cannot write.*: no space left on device \(ENOSPC\)$/m);
  });
});

describe.skipIf(!hasSetpriv)('a directory the user may not write (EACCES)', () => {
  it('refused up front, exit 2, one line', () => {
    const d = mkdtempSync(join(tmp, 'acl-'));
    chmodSync(tmp, 0o755);
    chmodSync(d, 0o755);
    mkdirSync(join(d, 'rootonly'), { mode: 0o755 });
    const r = spawnSync(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        NATLAB_BIN,
        'replay',
        '--in',
        PCAP,
        '--out',
        join(d, 'rootonly', 'x'),
      ],
      {
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`natlab replay: --out: ${join(d, 'rootonly')} is not writable (EACCES)`);
  });
});
