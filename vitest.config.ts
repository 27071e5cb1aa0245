import { configDefaults, defineConfig } from "vitest/config";

// Tests import workspace packages from source (the "source" export condition), so a test run
// does not depend on a fresh `tsc -b`. Each test file starts its own nats-server and simulator;
// files run in parallel processes, bounded for a 2-core machine.
export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: ["packages/*/test/**/*.test.ts", "services/*/test/**/*.test.ts", "test/**/*.test.ts"],
    // The long fault scenarios run with `npm run test:faults` (vitest.faults.config.ts); only the
    // fast ones in test/faults/ci/ run here.
    exclude: [...configDefaults.exclude, "test/faults/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 3,
    reporters: ["default", "./scripts/summary-reporter.ts"],
  },
});
