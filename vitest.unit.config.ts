import { defineConfig } from 'vitest/config';

// The fast tier (`npm run test:unit`, under a minute): pure logic — packet, pcap, scenario,
// model, the core's dataplane on the calling thread, comparison and re-addressing, conformance
// (model and the inline core). Left to the
// full `npm test`: worker threads, the kernel oracle (namespaces), the fuzz campaigns, the
// benchmark harness, the corpus and the million-packet streaming run, and tshark round trips.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    maxWorkers: 2,
    include: [
      'test/packet/**/*.test.ts',
      'test/pcap/**/*.test.ts',
      'test/scenario/**/*.test.ts',
      'test/model/**/*.test.ts',
      'test/core/dataplane*.test.ts',
      'test/diff/**/*.test.ts',
      'test/conformance/**/*.test.ts',
      'test/replay/remap.test.ts',
      'test/replay/replay.test.ts',
      'test/spec/**/*.test.ts',
      'test/import/**/*.test.ts',
      'test/mutants/**/*.test.ts',
      'test/cli/misuse.test.ts',
    ],
    exclude: [
      'test/pcap/tshark.test.ts',
      'test/pcap/cli.test.ts',
      'test/scenario/kernel-iptables.test.ts',
      'test/scenario/cli.test.ts',
    ],
  },
});
