export { buildVmLifecycleService, type VmLifecycleDeps } from "./build.js";
export { authorizeVmCommand, type GuardDeps } from "./guard.js";
export { runVmCommand, placementOf, type LifecycleDeps } from "./lifecycle.js";
