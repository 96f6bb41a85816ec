// Reference figures the charts draw as labelled lines: the core's targets and the anchors'
// published figures, each with its source (results/README.md lists them under the charts).
// Values are what the sources say; they are not measured here.

export interface Reference {
  kind: 'target' | 'anchor';
  /** Short label drawn on the chart. */
  label: string;
  unit: 'Mpps' | 'sessions/s' | 'bytes/session';
  /** One value for every x (a horizontal line), or one per session count. */
  value?: number;
  bySessions?: Array<{ sessions: number; value: number }>;
  /** Where the figure comes from. */
  source: string;
}

const ISSUE_4 = 'issue #4 (the fast core), its speed targets';

export const REFERENCES: readonly Reference[] = [
  {
    kind: 'target',
    label: 'target, 1 worker',
    unit: 'Mpps',
    bySessions: [
      { sessions: 1024, value: 15 },
      { sessions: 65536, value: 5 },
      { sessions: 1048576, value: 3 },
    ],
    source: `${ISSUE_4}: one worker ≥ 15 Mpps with 1k sessions, ≥ 5 Mpps with 64k, ≥ 3 Mpps with 1M (64-byte frames of established sessions)`,
  },
  {
    kind: 'anchor',
    label: 'translate-only loop',
    unit: 'Mpps',
    bySessions: [
      { sessions: 1024, value: 32 },
      { sessions: 65536, value: 5 },
      { sessions: 1048576, value: 4 },
    ],
    source: `${ISSUE_4}: a bare translate-only loop (one thread, 32-byte slots holding key and rewrite, two passes per batch of 32) measured on this machine: about 32 Mpps with 1k flows, 5 with 64k, 4 with 1M — the memory bound of any table layout here`,
  },
  {
    kind: 'anchor',
    label: 'verified C NAT, DPDK',
    unit: 'Mpps',
    value: 4.9,
    source: `${ISSUE_4}, "for scale": a formally verified NAT written in C on DPDK forwards 4.9 Mpps per core`,
  },
  {
    kind: 'anchor',
    label: 'ixy.js forwarding, no NAT',
    unit: 'Mpps',
    value: 5,
    source: `${ISSUE_4}, "for scale": ixy.js (the JavaScript user-space driver of the ixy project, Node.js) forwards about 5 Mpps without any NAT`,
  },
  {
    kind: 'target',
    label: 'target per worker',
    unit: 'sessions/s',
    value: 1_000_000,
    source: `${ISSUE_4}: session creation (every frame a new flow) ≥ 1 M sessions/s per worker`,
  },
  {
    kind: 'target',
    label: 'target ≤ 64 B/session',
    unit: 'bytes/session',
    value: 64,
    source: `${ISSUE_4}: ≤ 64 bytes of shared memory per session`,
  },
  {
    kind: 'anchor',
    label: 'Linux conntrack ~300 B/session',
    unit: 'bytes/session',
    value: 300,
    source: `${ISSUE_4}: Linux spends about 300 bytes per conntrack entry (struct nf_conn with its extensions)`,
  },
];

/** The references of one unit. */
export function referencesFor(unit: Reference['unit']): Reference[] {
  return REFERENCES.filter((r) => r.unit === unit);
}
