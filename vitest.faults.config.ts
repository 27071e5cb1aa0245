import { defineConfig } from "vitest/config";

// `npm run test:faults`: the slow fault-injection scenarios (docs/reliability.md). Services run as
// real child processes from their dist/ builds, so the script builds first. One file at a time:
// each starts nats-server(s), the simulator and several Node processes, and kills them on
// purpose; in parallel on two cores the kills would race the timing the scenarios rely on.
export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: ["test/faults/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
    reporters: ["default", "./scripts/summary-reporter.ts"],
  },
});
