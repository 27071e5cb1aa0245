import { describe, expect, it } from "vitest";
import { z } from "zod";
import { BaseEnvSchema, ConfigError, PortSchema, loadConfig, natsAuthRefinement } from "@iaas/runtime";

const Schema = BaseEnvSchema.extend({
  VCENTER_URL: z.url(),
  VCENTER_PASSWORD: z.string().min(1),
  HEALTH_PORT: PortSchema.default(9101),
}).superRefine(natsAuthRefinement);

describe("loadConfig", () => {
  it("applies defaults and coerces", () => {
    const c = loadConfig(Schema, { VCENTER_URL: "https://vc.example/sdk", VCENTER_PASSWORD: "s3cret", HEALTH_PORT: "0" });
    expect(c).toMatchObject({ NATS_URL: "nats://127.0.0.1:4222", LOG_LEVEL: "info", HEALTH_PORT: 0 });
  });

  it("names every missing or bad variable and never echoes a value", () => {
    let err: unknown;
    try {
      loadConfig(Schema, { VCENTER_URL: "not a url", HEALTH_PORT: "70000", LOG_LEVEL: "loud" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variables.sort()).toEqual(["HEALTH_PORT", "LOG_LEVEL", "VCENTER_PASSWORD", "VCENTER_URL"]);
    expect((err as Error).message).toMatchInlineSnapshot(`"invalid configuration: LOG_LEVEL: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"; VCENTER_URL: Invalid URL; VCENTER_PASSWORD: is required; HEALTH_PORT: Too big: expected number to be <=65535"`);
    expect((err as Error).message).not.toContain("not a url");
  });

  it("wants NATS user and password together", () => {
    expect(() => loadConfig(Schema, { VCENTER_URL: "http://x/sdk", VCENTER_PASSWORD: "p", NATS_USER: "power" })).toThrow(
      "invalid configuration: NATS_PASSWORD: NATS_USER and NATS_PASSWORD go together",
    );
  });
});
