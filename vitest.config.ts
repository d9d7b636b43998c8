import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{engine,workers,schemas,api,web,scripts,test}/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: stress tests spawn worker threads of their own, so keep file parallelism low.
    maxWorkers: 2,
    pool: 'forks',
  },
});
