export { buildVmLifecycleService, type VmLifecycleDeps } from "./build.js";
export { authorizeVmCommand, type GuardDeps } from "./guard.js";
export { runVmCommand, placementOf, describeVm, type LifecycleDeps } from "./lifecycle.js";
