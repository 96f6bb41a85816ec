// Where a command writes: checked before any work starts, so a bad `--out` is a one-line usage
// error (exit 2) instead of a stack trace after a long run. Every command that writes files calls
// prepareOutputDir / checkOutputFile at its top; main.ts maps the write errors that can still
// happen later (a disk filling up mid-run) through describeFsError. docs/errors.md lists the cases.
import {
  constants as FS,
  mkdirSync,
  mkdtempSync,
  rmdirSync,
  statfsSync,
  statSync,
  accessSync,
  type Stats,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InputError } from '../spec/errors.ts';

/** Filesystems that hold no user files (statfs f_type, linux/magic.h): writing there is a mistake. */
const SPECIAL_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x73636673, 'securityfs'],
  [0x74726163, 'tracefs'],
  [0x6e736673, 'nsfs'],
  [0xcafe4a11, 'bpf'],
  [0x50495045, 'pipefs'],
  [0x42494e4d, 'binfmt_misc'],
  [0x6165676c, 'pstore'],
  [0xde5e81e4, 'efivarfs'],
  [0x19800202, 'mqueue'],
  [0x65735546, 'fuse control'],
]);

/** Less free space than this on the output filesystem is refused up front ("disk full"). */
export const MIN_FREE_BYTES = 1 << 20;
/** Path components created at most (a real bound on the mkdir walk). */
const MAX_DEPTH = 256;

/** Short text of the usual errno codes of file writes. */
const FS_CODES: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only filesystem',
  ENOTDIR: 'a path component is not a directory',
  EISDIR: 'is a directory',
  EEXIST: 'already exists',
  ENOENT: 'no such file or directory',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EFBIG: 'file too large',
  EIO: 'input/output error',
  EBUSY: 'device or resource busy',
  EINVAL: 'invalid argument',
};

interface ErrnoLike {
  code?: unknown;
  syscall?: unknown;
  path?: unknown;
  dest?: unknown;
}

/**
 * One line for a filesystem error (a Node errno exception with a code we know), or null when
 * `e` is something else (a bug: main.ts lets it crash loudly).
 */
export function describeFsError(e: unknown): string | null {
  if (!(e instanceof Error)) return null;
  const x = e as ErrnoLike;
  if (typeof x.code !== 'string' || !(x.code in FS_CODES)) return null;
  if (typeof x.syscall !== 'string') return null;
  const what = FS_CODES[x.code];
  const path = typeof x.path === 'string' ? ` ${x.path}` : '';
  const verb = /^(open|write|close|mkdir|rename|unlink|rmdir|ftruncate|fsync|copyfile|symlink|mkdtemp)$/.test(x.syscall)
    ? 'cannot write'
    : `cannot ${x.syscall}`;
  return `${verb}${path}: ${what} (${x.code})`;
}

function statOrNull(p: string, label: string): Stats | null {
  try {
    return statSync(p);
  } catch (e) {
    const code = (e as ErrnoLike).code;
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') {
      // Name the file that stands where a directory should be (bounded walk up).
      let up = dirname(p);
      for (let i = 0; i < MAX_DEPTH && up !== dirname(up); i++, up = dirname(up)) {
        try {
          if (!statSync(up).isDirectory()) break;
        } catch {
          // keep walking up
        }
      }
      throw new InputError(`${label}: ${p}: ${up} is a file, not a directory`);
    }
    const d = describeFsError(e);
    if (d) throw new InputError(`${label}: ${d}`);
    throw e;
  }
}

/** The filesystem checks on an existing directory that will receive files. */
function checkWritableDir(dir: string, label: string): void {
  let fsType: number;
  let free: number;
  try {
    const s = statfsSync(dir);
    fsType = Number(s.type);
    free = Number(s.bavail) * Number(s.bsize);
  } catch {
    return; // no statfs here: the probe below still checks writability
  }
  const special = SPECIAL_FS.get(fsType);
  if (special !== undefined)
    throw new InputError(
      `${label}: ${dir} is on the ${special} filesystem, which holds no files; choose a directory on a disk`,
    );
  try {
    accessSync(dir, FS.W_OK | FS.X_OK);
  } catch (e) {
    throw new InputError(`${label}: ${dir} is not writable (${(e as ErrnoLike).code ?? 'error'})`);
  }
  // Root passes access(); the probe catches read-only mounts and other refusals for everyone.
  let probe: string;
  try {
    probe = mkdtempSync(join(dir, '.natlab-probe-'));
  } catch (e) {
    const d = describeFsError(e);
    const code = (e as ErrnoLike).code;
    throw new InputError(
      `${label}: ${dir} is not writable: ${d ? `${FS_CODES[code as string]} (${code})` : (e as Error).message}`,
    );
  }
  rmdirSync(probe);
  if (free < MIN_FREE_BYTES)
    throw new InputError(`${label}: no space left on the filesystem of ${dir} (${free} bytes free)`);
}

/**
 * Checks that `path` can be (or already is) a directory natlab may write into, and creates it
 * (with its missing parents) unless `create` is false. Throws an InputError (one line, exit 2) naming `label`
 * (e.g. "--out DIR") otherwise: an existing non-directory, a path under a file, a read-only or
 * special filesystem (/proc, /sys), a full disk.
 */
export function prepareOutputDir(path: string, label: string, create = true): string {
  if (path === '') throw new InputError(`${label}: empty path`);
  const abs = resolve(path);
  const st = statOrNull(abs, label);
  if (st) {
    if (!st.isDirectory()) throw new InputError(`${label}: ${path} exists and is not a directory`);
    checkWritableDir(abs, label);
    return abs;
  }
  // Walk up to the nearest existing ancestor (bounded by the number of path components).
  const missing: string[] = [];
  let cur = abs;
  for (let depth = 0; ; depth++) {
    if (depth > MAX_DEPTH) throw new InputError(`${label}: ${path} is more than ${MAX_DEPTH} directories deep`);
    const s = statOrNull(cur, label);
    if (s) {
      if (!s.isDirectory()) throw new InputError(`${label}: ${path}: ${cur} is a file, not a directory`);
      break;
    }
    missing.push(cur);
    const up = dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  checkWritableDir(cur, label);
  if (!create) return abs;
  // One level at a time: never recursive mkdir (it loops on some pseudo filesystems).
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      mkdirSync(missing[i]);
    } catch (e) {
      if ((e as ErrnoLike).code === 'EEXIST' && statOrNull(missing[i], label)?.isDirectory()) continue;
      const d = describeFsError(e);
      if (d) throw new InputError(`${label}: ${d}`);
      throw e;
    }
  }
  return abs;
}

/**
 * Checks that natlab may write the file `path` (e.g. `--json FILE`): not a directory, its
 * directory writable (created when missing unless `create` is false).
 */
export function checkOutputFile(path: string, label: string, create = true): string {
  if (path === '') throw new InputError(`${label}: empty path`);
  const abs = resolve(path);
  const st = statOrNull(abs, label);
  if (st?.isDirectory()) throw new InputError(`${label}: ${path} is a directory, not a file`);
  if (st && !st.isFile()) throw new InputError(`${label}: ${path} exists and is not a regular file`);
  prepareOutputDir(dirname(abs), label, create);
  if (st) {
    try {
      accessSync(abs, FS.W_OK);
    } catch (e) {
      throw new InputError(`${label}: ${path} is not writable (${(e as ErrnoLike).code ?? 'error'})`);
    }
  }
  return abs;
}

/**
 * Checks that an input file exists and is readable, before any work (`--in`, `--pcap`, ...).
 */
export function checkInputFile(path: string, label: string): string {
  if (path === '') throw new InputError(`${label}: empty path`);
  const st = statOrNull(resolve(path), label);
  if (!st) throw new InputError(`${label}: ${path}: no such file`);
  if (st.isDirectory()) throw new InputError(`${label}: ${path} is a directory, not a file`);
  try {
    accessSync(path, FS.R_OK);
  } catch (e) {
    throw new InputError(`${label}: ${path} is not readable (${(e as ErrnoLike).code ?? 'error'})`);
  }
  return path;
}
