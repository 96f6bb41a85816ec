// Gathers the import inputs: files named on the command line or found in directories, each told
// apart by its content (AWS describe-* JSON by its top-level key, `terraform show -json` state,
// `nft -j` JSON, iptables-save, `nft list ruleset`, sysctl files). Host files (the NAT
// instances' own configuration) belong to the instance named by their directory
// (`DIR/nat/iptables-save`, `DIR/i-0abc/sysctl.conf`), by the start of their file name
// (`nat.iptables-save`, `i-0abc.sysctl.conf`), or by `--host INSTANCE=FILE`. Cold path.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import { InputError } from '../../spec/errors.ts';
import { J } from './json-reader.ts';
import { AWS_KINDS, isAwsJson, readAwsJson } from './aws.ts';
import { isTerraformJson, readTerraformJson } from './terraform.ts';
import {
  detectHostFile,
  emptyHostConfig,
  readIptablesSave,
  readNftJson,
  readNftText,
  readSysctl,
  type HostConfig,
} from './host.ts';
import { emptyInventory, mergeInventory, type Inventory } from './inventory.ts';

/** Directory walk bound (files) and depth. */
const MAX_FILES = 10000;
const MAX_DEPTH = 6;

export interface ImportInputs {
  inv: Inventory;
  /** Host files by the instance key they were filed under (id or Name; resolved by build). */
  hosts: Map<string, HostConfig>;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(
      `${path}: cannot read (${code === 'ENOENT' ? 'no such file' : (code ?? (e as Error).message)})`,
      path,
      '',
    );
  }
}

function walk(dir: string, depth: number, out: string[]): void {
  if (depth > MAX_DEPTH) throw new InputError(`${dir}: directories nested more than ${MAX_DEPTH} deep`, dir, '');
  for (const ent of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  )) {
    if (ent.name.startsWith('.') || /^README/i.test(ent.name)) continue;
    const p = join(dir, ent.name);
    if (ent.isDirectory()) walk(p, depth + 1, out);
    else if (ent.isFile()) out.push(p);
    if (out.length > MAX_FILES) throw new InputError(`${dir}: more than ${MAX_FILES} files`, dir, '');
  }
}

/** The instance key of a host file: its directory below the import root, else its name up to the first '.'. */
function hostKey(path: string, root: string | null): string {
  if (root) {
    const rel = relative(root, path).split(sep);
    if (rel.length > 1) return rel[0];
  }
  return basename(path).split('.')[0];
}

/**
 * Reads every input. `paths`: files or directories; `hostFiles`: explicit INSTANCE=FILE pairs.
 */
export function readImportInputs(
  paths: string[],
  hostFiles: Array<{ instance: string; path: string }> = [],
): ImportInputs {
  const inv = emptyInventory();
  const hosts = new Map<string, HostConfig>();
  const files: Array<{ path: string; root: string | null; key: string | null }> = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new InputError(`${p}: no such file or directory`, p, '');
    }
    if (st.isDirectory()) {
      const list: string[] = [];
      walk(p, 0, list);
      for (const f of list) files.push({ path: f, root: p, key: null });
    } else files.push({ path: p, root: null, key: null });
  }
  for (const h of hostFiles) files.push({ path: h.path, root: null, key: h.instance });
  for (const f of files) {
    const text = readText(f.path);
    const trimmed = text.trimStart();
    let json: J | null = null;
    if (f.path.toLowerCase().endsWith('.json') || trimmed.startsWith('{') || trimmed.startsWith('['))
      json = J.parse(text, f.path);
    if (json && f.key === null && isAwsJson(json)) {
      mergeInventory(inv, readAwsJson(json));
      continue;
    }
    if (json && f.key === null && isTerraformJson(json)) {
      mergeInventory(inv, readTerraformJson(json));
      continue;
    }
    const kind = detectHostFile(text, json);
    if (kind === null) {
      if (json)
        json.fail(
          `not a recognised input: expected aws ec2 describe-* output (top-level ${Object.keys(AWS_KINDS).join(', ')}), terraform show -json output (format_version, values) or nft -j list ruleset (nftables); top-level keys here: ${json.keys().join(', ') || 'none'}`,
        );
      throw new InputError(
        `${f.path}: not a recognised input (expected AWS CLI or Terraform JSON, iptables-save output, nft list ruleset output or a sysctl file)`,
        f.path,
        '',
      );
    }
    const key = f.key ?? hostKey(f.path, f.root);
    let h = hosts.get(key);
    if (!h) hosts.set(key, (h = emptyHostConfig()));
    if (kind === 'iptables-save') readIptablesSave(text, f.path, h);
    else if (kind === 'nft') readNftText(text, f.path, h);
    else if (kind === 'nft-json') readNftJson(json!, h);
    else readSysctl(text, f.path, h);
  }
  if (inv.inputs.length === 0)
    throw new InputError(
      `no AWS CLI or Terraform JSON among the inputs (${paths.concat(hostFiles.map((h) => h.path)).join(', ')}): the VPC comes from describe-vpcs/-subnets/-route-tables/-instances output or a terraform show -json state`,
      paths[0] ?? '',
      '',
    );
  return { inv, hosts };
}
