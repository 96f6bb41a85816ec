// Layering of docs/architecture.md, checked mechanically in CI (`npm run depcheck`).
// L0 packet, pcap, spec  <  L1 scenario (< traffic)  <  L2 model, core, oracle  <  L3 diff  <  L4 cli
const layer = {
  spec: 0,
  packet: 0,
  pcap: 0,
  scenario: 1,
  traffic: 1,
  model: 2,
  core: 2,
  oracle: 2,
  diff: 3,
  cli: 4,
};
const dirs = Object.keys(layer);
const forbidden = [];
for (const from of dirs) {
  for (const to of dirs) {
    if (from === to) continue;
    const upward = layer[to] > layer[from];
    // Allowed within a layer: L0 → spec, pcap → packet, traffic → scenario (generators build scenarios).
    const sideways =
      layer[to] === layer[from] &&
      !(layer[from] === 0 && to === 'spec') &&
      !(from === 'pcap' && to === 'packet') &&
      !(from === 'traffic' && to === 'scenario');
    if (upward || sideways) {
      forbidden.push({
        name: `no-${from}-to-${to}`,
        comment: `${from}/ (L${layer[from]}) must not import ${to}/ (L${layer[to]}): dependencies point down only`,
        severity: 'error',
        from: { path: `^src/${from}/` },
        to: { path: `^src/${to}/` },
      });
    }
  }
}
// diff/verify/ (natlab verify) reaches the engines only through diff/engines.ts and the Engine
// contract: a real box is compared with whichever engine the user names.
forbidden.push({
  name: 'verify-engines-through-descriptors',
  comment: 'src/diff/verify/ must not import model/, core/ or oracle/ (use diff/engines.ts)',
  severity: 'error',
  from: { path: '^src/diff/verify/' },
  to: { path: '^src/(model|core|oracle)/' },
});
forbidden.push({
  name: 'packet-imports-nothing',
  comment: 'src/packet/ imports nothing else from src/',
  severity: 'error',
  from: { path: '^src/packet/' },
  to: { path: '^src/(?!packet/)' },
});
forbidden.push({
  name: 'spec-imports-nothing',
  comment: 'src/spec/ is vocabulary only and imports nothing else from src/',
  severity: 'error',
  from: { path: '^src/spec/' },
  to: { path: '^src/(?!spec/)' },
});
forbidden.push({
  name: 'worker-threads-only-in-core-pool',
  comment: 'only the core pool/worker files touch piscina or node:worker_threads',
  severity: 'error',
  from: { path: '^src/', pathNot: '^src/core/(pool|worker)[^/]*\\.ts$' },
  to: { path: '(^|/)node_modules/piscina/|^worker_threads$' },
});
// bench/ sits above everything (it measures the engines and the replay): it may use the public
// entry points of src/, never an engine's internals. Where a benchmark must drive the core's
// internals it goes through the core's explicit bench API (src/core/bench-api.ts).
forbidden.push({
  name: 'bench-uses-core-bench-api',
  comment: 'bench/ reaches core internals only through src/core/bench-api.ts (or the engine, src/core/engine.ts)',
  severity: 'error',
  from: { path: '^bench/' },
  to: { path: '^src/core/', pathNot: '^src/core/(bench-api|engine)\\.ts$' },
});
forbidden.push({
  name: 'bench-uses-engine-entry-points',
  comment: 'bench/ uses the model and the kernel oracle through their index.ts only',
  severity: 'error',
  from: { path: '^bench/' },
  to: { path: '^src/(model|oracle)/', pathNot: '^src/(model|oracle)/index\\.ts$' },
});
forbidden.push({
  name: 'only-cli-loads-bench',
  comment:
    'bench/ is the implementation of `natlab bench`: only src/cli/ imports it, and bench/ never imports src/cli/',
  severity: 'error',
  from: { path: '^src/', pathNot: '^src/cli/' },
  to: { path: '^bench/' },
});
forbidden.push({
  name: 'bench-not-cli',
  severity: 'error',
  from: { path: '^bench/' },
  to: { path: '^src/cli/' },
});
forbidden.push({
  name: 'no-circular',
  severity: 'error',
  from: {},
  to: { circular: true },
});
module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs'] },
  },
};
