// Asks Wireshark's tshark whether a capture is clean: no malformed packets, no bad IP/TCP/UDP/ICMP
// checksums, no protocol errors. Used by tests of everything that writes captures.
import { execFile, execFileSync } from 'node:child_process';

/** True if a `tshark` binary runs on this machine. */
export const HAVE_TSHARK: boolean = (() => {
  try {
    execFileSync('tshark', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

// epan/proto.h: expert severities and groups as tshark prints them in _ws.expert.* fields.
const PI_WARN = 0x00600000;
const PI_ERROR = 0x00800000;
const PI_CHECKSUM = 0x01000000;
const PI_UNDECODED = 0x05000000;
const PI_MALFORMED = 0x07000000;
const GROUP_NAMES: Record<number, string> = {
  [PI_CHECKSUM]: 'checksum',
  0x02000000: 'sequence',
  [PI_UNDECODED]: 'undecoded',
  [PI_MALFORMED]: 'malformed',
  0x09000000: 'protocol',
};

export interface TsharkResult {
  ok: boolean;
  /** One line per problem: `frame N: <group>/<severity>: <message>`. */
  problems: string[];
}

/**
 * Reads `path` with checksum validation on for IPv4, TCP and UDP (ICMP is always checked) and
 * reports expert info that means the capture is broken: any error-severity item, and warnings of
 * the checksum, malformed or undecoded groups. Normal TCP analysis notes (SYN, retransmission,
 * ...) are not problems. A file tshark cannot read at all is a problem too.
 */
export function tsharkCheck(path: string): Promise<TsharkResult> {
  const args = [
    '-n',
    '-r',
    path,
    '-o',
    'ip.check_checksum:TRUE',
    '-o',
    'tcp.check_checksum:TRUE',
    '-o',
    'udp.check_checksum:TRUE',
    '-T',
    'fields',
    '-e',
    'frame.number',
    '-e',
    '_ws.expert.severity',
    '-e',
    '_ws.expert.group',
    '-e',
    '_ws.expert.message',
    '-E',
    'occurrence=a',
    '-E',
    'separator=\t',
    '-E',
    'aggregator=\x01',
  ];
  return new Promise((resolve) => {
    execFile('tshark', args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const problems: string[] = [];
      if (err) {
        const msg = stderr
          .split('\n')
          .filter((l) => l && !l.startsWith('Running as user'))
          .join(' ');
        problems.push(`tshark failed: ${msg || err.message}`);
      }
      for (const line of stdout.split('\n')) {
        if (!line) continue;
        const [frame, sev, grp, msg] = line.split('\t');
        if (!sev) continue;
        const sevs = sev.split('\x01').map(Number);
        const grps = (grp ?? '').split('\x01').map(Number);
        const msgs = (msg ?? '').split('\x01');
        sevs.forEach((s, k) => {
          const g = grps[k] ?? 0;
          const bad =
            s >= PI_ERROR || (s >= PI_WARN && (g === PI_CHECKSUM || g === PI_MALFORMED || g === PI_UNDECODED));
          if (bad) {
            const sevName = s >= PI_ERROR ? 'error' : 'warning';
            problems.push(
              `frame ${frame}: ${GROUP_NAMES[g] ?? `group 0x${g.toString(16)}`}/${sevName}: ${msgs[k] ?? ''}`,
            );
          }
        });
      }
      resolve({ ok: problems.length === 0, problems });
    });
  });
}
