export { buildProxy, type ProxyDeps } from "./build.js";
export { Vcenter, toContractSummary, leaseOf, OWNER_KEY, LEASE_FIELD } from "./vcenter.js";
export { toIaasError } from "./faults.js";
