export { buildProxy, type ProxyDeps } from "./build.js";
export { Vcenter, toContractSummary, OWNER_KEY } from "./vcenter.js";
export { toIaasError } from "./faults.js";
