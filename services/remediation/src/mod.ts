export { buildRemediation, VERSION, type Remediation, type RemediationDeps, type RemediationConfig } from "./build.js";
export { RemediationEnvSchema, remediationConfigFromEnv, type RemediationEnv } from "./config.js";
export { vcenterOverNats, type VcenterPort, type VcenterTimeouts } from "./vcenter.js";
export { Reasons, decisionId, type Decision, type Reason } from "./report.js";
