import { defineConfig } from "vitest/config";

// Two tiers: unit tests run in parallel; integration tests start real servers
// (Samba, PostgreSQL, Redis) and run one file at a time so that latency
// measurements and port use do not fight over the machine's two cores.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["**/*.test.ts"],
          exclude: ["node_modules/**", "test/**"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
          exclude: ["node_modules/**"],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
