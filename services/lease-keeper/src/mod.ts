export { buildLeaseKeeper, type LeaseKeeperDeps } from "./build.js";
export { LeaseKeeper, stepKey, type KeeperDeps } from "./keeper.js";
export { authorizeLeaseCommand, runLeaseCommand } from "./commands.js";
export { StepClaims, StepRecordSchema } from "./claims.js";
