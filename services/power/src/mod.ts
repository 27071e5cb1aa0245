export { buildPowerService, type PowerServiceDeps } from "./build.js";
export { runPower } from "./power.js";
export { authorizePowerCommand, type PowerGuardDeps } from "./guard.js";
