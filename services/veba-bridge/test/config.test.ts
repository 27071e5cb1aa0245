import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "@iaas/runtime";
import { BridgeEnvSchema, bridgeConfigFromEnv } from "../src/mod.js";

describe("bridge configuration", () => {
  it("defaults: port 8080 on all interfaces, 1 MiB bodies, 8 MiB held at once, JSON 32 deep and 100,000 values, health on 9105", () => {
    const env = loadConfig(BridgeEnvSchema, { BRIDGE_TOKEN: "t" });
    expect(env.HEALTH_PORT).toBe(9105);
    expect(bridgeConfigFromEnv(env)).toEqual({
      host: "0.0.0.0",
      port: 8080,
      bodyLimit: 1048576,
      inflightBytes: 8 * 1048576,
      json: { maxDepth: 32, maxValues: 100_000 },
      publishTimeoutMs: 5000,
      auth: { token: "t" },
    });
  });

  it("credentials are required unless BRIDGE_AUTH=none says otherwise", () => {
    expect(() => loadConfig(BridgeEnvSchema, {})).toThrow(/BRIDGE_TOKEN: is required \(or BRIDGE_USERNAME and BRIDGE_PASSWORD\): set one, or BRIDGE_AUTH=none/);
    expect(bridgeConfigFromEnv(loadConfig(BridgeEnvSchema, { BRIDGE_AUTH: "none" })).auth).toEqual({});
    expect(bridgeConfigFromEnv(loadConfig(BridgeEnvSchema, { BRIDGE_USERNAME: "veba", BRIDGE_PASSWORD: "pw" })).auth).toEqual({ username: "veba", password: "pw" });
    expect(() => loadConfig(BridgeEnvSchema, { BRIDGE_AUTH: "none", BRIDGE_TOKEN: "t" })).toThrow(/BRIDGE_AUTH: is none, but credentials are set/);
    expect(() => loadConfig(BridgeEnvSchema, { BRIDGE_AUTH: "off", BRIDGE_TOKEN: "t" })).toThrow(/BRIDGE_AUTH/);
  });

  it("the byte budget holds at least one body of the largest size", () => {
    expect(() => loadConfig(BridgeEnvSchema, { BRIDGE_TOKEN: "t", BRIDGE_BODY_LIMIT: "2000000", BRIDGE_INFLIGHT_BYTES: "1000000" })).toThrow(/BRIDGE_INFLIGHT_BYTES: must be at least BRIDGE_BODY_LIMIT/);
    expect(bridgeConfigFromEnv(loadConfig(BridgeEnvSchema, { BRIDGE_TOKEN: "t", BRIDGE_INFLIGHT_BYTES: "2097152", BRIDGE_JSON_MAX_DEPTH: "16", BRIDGE_JSON_MAX_VALUES: "5000" }))).toMatchObject({ inflightBytes: 2097152, json: { maxDepth: 16, maxValues: 5000 } });
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
    expect(attempt({ BRIDGE_TOKEN: "t", BRIDGE_PASSWORD: "hunter2" })).toMatchInlineSnapshot(`"invalid configuration: BRIDGE_USERNAME: BRIDGE_USERNAME and BRIDGE_PASSWORD go together"`);
    expect(attempt({ BRIDGE_USERNAME: "a:b", BRIDGE_PASSWORD: "hunter2" })).toMatchInlineSnapshot(`"invalid configuration: BRIDGE_USERNAME: must not contain ':'"`);
    expect(attempt({ BRIDGE_TOKEN: "t", BRIDGE_BODY_LIMIT: "10" })).toMatch(/^invalid configuration: BRIDGE_BODY_LIMIT: /);
    expect(attempt({ BRIDGE_TOKEN: "t", BRIDGE_PORT: "http" })).toMatch(/^invalid configuration: BRIDGE_PORT: /);
    expect(attempt({ BRIDGE_TOKEN: "t", BRIDGE_PASSWORD: "hunter2" })).not.toContain("hunter2");
  });
});
