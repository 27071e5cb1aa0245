export { buildPowerService, type PowerServiceDeps } from "./build.js";
export { runPower, describeVm } from "./power.js";
