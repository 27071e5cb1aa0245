export * from "./tokens.js";
export * from "./subjects.js";
export * from "./errors.js";
export * from "./common.js";
export * from "./commands.js";
export * from "./proxy.js";
export * from "./audit.js";
export * from "./schemas.js";
