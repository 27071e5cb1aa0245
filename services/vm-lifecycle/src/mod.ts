export { buildVmLifecycleService, type VmLifecycleDeps, type VmLifecycleService } from "./build.js";
export { authorizeSnapshotCommand, runSnapshotCommand, defaultSnapshotName, type SnapshotDeps } from "./snapshots.js";
export { SnapshotSweeper, type SnapshotSweepDeps, type SweepStats } from "./sweep.js";
export { authorizeVmCommand, type GuardDeps } from "./guard.js";
export { runVmCommand, placementOf, type LifecycleDeps } from "./lifecycle.js";
