import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "@iaas/runtime";
import { BridgeEnvSchema, bridgeConfigFromEnv } from "../src/mod.js";

describe("bridge configuration", () => {
  it("defaults: port 8080 on all interfaces, 1 MiB bodies, no auth, health on 9105", () => {
    const env = loadConfig(BridgeEnvSchema, {});
    expect(env.HEALTH_PORT).toBe(9105);
    expect(bridgeConfigFromEnv(env)).toEqual({ host: "0.0.0.0", port: 8080, bodyLimit: 1048576, publishTimeoutMs: 5000, auth: {} });
  });

  it("basic, bearer, or both", () => {
    const env = loadConfig(BridgeEnvSchema, { BRIDGE_USERNAME: "veba", BRIDGE_PASSWORD: "pw", BRIDGE_TOKEN: "t", BRIDGE_PORT: "9000", BRIDGE_BODY_LIMIT: "2048" });
    expect(bridgeConfigFromEnv(env)).toMatchObject({ port: 9000, bodyLimit: 2048, auth: { username: "veba", password: "pw", token: "t" } });
    expect(bridgeConfigFromEnv(loadConfig(BridgeEnvSchema, { BRIDGE_TOKEN: "t", BRIDGE_USERNAME: "" })).auth).toEqual({ token: "t" });
  });

  it("names the bad variable and never echoes a secret", () => {
    const attempt = (env: Record<string, string>) => {
      try {
        loadConfig(BridgeEnvSchema, env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error("expected a ConfigError");
    };
    expect(attempt({ BRIDGE_PASSWORD: "hunter2" })).toMatchInlineSnapshot(`"invalid configuration: BRIDGE_USERNAME: BRIDGE_USERNAME and BRIDGE_PASSWORD go together"`);
    expect(attempt({ BRIDGE_USERNAME: "a:b", BRIDGE_PASSWORD: "hunter2" })).toMatchInlineSnapshot(`"invalid configuration: BRIDGE_USERNAME: must not contain ':'"`);
    expect(attempt({ BRIDGE_BODY_LIMIT: "10" })).toMatch(/^invalid configuration: BRIDGE_BODY_LIMIT: /);
    expect(attempt({ BRIDGE_PORT: "http" })).toMatch(/^invalid configuration: BRIDGE_PORT: /);
    expect(attempt({ BRIDGE_PASSWORD: "hunter2" })).not.toContain("hunter2");
  });
});
