/**
 * The default policy (the product's documented default, docs/policy.md), used when IAAS_POLICY is unset and as
 * the value of every optional field a policy file leaves out. deploy/policy.example.yaml is the
 * same policy written as YAML; a test keeps the two equal. It is embedded here rather than read
 * from deploy/ so that it works the same from src/ and dist/ and in any install layout.
 *
 * Scoped grants (viewer, operator and builder reach their own and their team's VMs; `*` reaches
 * every VM) are the version-2 default.
 *
 * Not fixed by the product's contract, chosen here: maxDiskGB 200, approvals expire after a
 * day and a card goes to SLACK_APPROVALS_CHANNEL (else the notify channel), quotas of 10 VMs, 20 vCPU, 64 GB memory and
 * 1,000 GB disk per user and 50, 100, 320 and 5,000 per team, 20 commands per user per
 * minute, confirmations live 5 minutes, a datastore is "full" at 80 %, at most 10 remediation
 * actions a minute, and the vCenter simulator's inventory (DC0) as placement.
 *
 * Not typed against the schema (the schema takes its field defaults from here); the loader's
 * tests parse it like any policy file.
 */
export const DEFAULTS = {
  roles: {
    viewer: ["help", "list", "info", "templates", "sizes", "quota", "snapshot.list", "lease", "approvals"],
    operator: ["power.*"],
    builder: ["create", "clone", "deploy", "resize", "delete", "owner", "snapshot.create", "snapshot.revert", "snapshot.delete", "lease.extend"],
    admin: ["*"],
  },
  bindings: [
    { role: "viewer", everyone: true },
    { role: "operator", everyone: true },
    { role: "builder", everyone: true },
  ],
  sizes: {
    small: { cpu: 1, memoryGB: 2, diskGB: 16 },
    medium: { cpu: 2, memoryGB: 4, diskGB: 40 },
    large: { cpu: 4, memoryGB: 8, diskGB: 80 },
    xlarge: { cpu: 8, memoryGB: 32, diskGB: 200, approval: true },
  },
  defaultSize: "small",
  limits: { maxCpu: 8, maxMemoryGB: 32, maxDiskGB: 200 },
  naming: {
    pattern: "^[a-z][a-z0-9-]{1,62}$",
    description: "2 to 63 lowercase letters, digits and dashes, starting with a letter (for example web-01)",
    maxLength: 63,
  },
  placement: {
    datacenter: "DC0",
    resourcePool: "/DC0/host/DC0_C0/Resources",
    folder: "/DC0/vm",
  },
  vcenters: {},
  protected: {
    names: ["prod-*"],
    folders: [],
  },
  teams: {},
  quotas: {
    perUser: { vms: 10, cpu: 20, memoryGB: 64, diskGB: 1000 },
    perTeam: { vms: 50, cpu: 100, memoryGB: 320, diskGB: 5000 },
    users: {},
    teams: {},
  },
  confirm: ["delete", "snapshot.revert"],
  confirmTtlSeconds: 300,
  rateLimit: { perUserPerMinute: 20 },
  approvals: {
    rules: [
      {
        name: "big-sizes",
        description: "sizes marked approval: true",
        commands: ["create", "deploy"],
        when: { sizeApproval: true },
        approvers: { roles: ["admin"] },
        minApprovals: 1,
        expireAfterMinutes: 1440,
      },
      {
        name: "long-leases",
        description: "a lease longer than leases.max",
        commands: ["create", "clone", "deploy", "lease.extend"],
        when: { leaseOverMax: true },
        approvers: { roles: ["admin"] },
        minApprovals: 1,
        expireAfterMinutes: 1440,
      },
    ],
  },
  leases: {
    enabled: true,
    default: "30d",
    max: "90d",
    grace: "7d",
    remindBefore: ["3d", "1d"],
    onExpiry: "powerOff",
    afterGrace: "delete",
  },
  snapshots: { maxPerVm: 3, maxAge: "7d" },
  remediation: {
    enabled: true,
    dryRun: false,
    cpuAlarms: ["VM CPU Usage", "Virtual machine CPU usage"],
    memoryAlarms: ["VM Memory Usage", "Virtual machine memory usage"],
    datastoreAlarms: ["Datastore usage on disk"],
    vmStorageAlarms: ["VM Storage Usage"],
    maxCpu: 4,
    maxMemoryGB: 16,
    cooldownMinutes: 10,
    withoutHotAdd: "defer",
    restartOptIn: { names: [] },
    excludedDatastores: [],
    datastoreThresholdPercent: 80,
    maxActionsPerMinute: 10,
    flap: { count: 5, withinMinutes: 30 },
  },
} as const;
