import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Kernel-oracle tests build network namespaces; the rest are CPU bound.
    // Two cores: keep file-level parallelism at two workers.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
