import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Integration tests start real servers on loopback; keep the 2-core machine unloaded.
    maxWorkers: 2,
    projects: [
      // Pure functions and in-process objects: no server, process or socket. `npx vitest run --project unit`, seconds.
      { extends: true, test: { name: 'unit', include: ['test/**/*.unit.test.ts'] } },
      // The real server, real clients, the simulated engine over loopback, real processes.
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: ['test/**/*.unit.test.ts'] } },
    ],
  },
});
