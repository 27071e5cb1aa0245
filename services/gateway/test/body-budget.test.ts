import { describe, expect, it } from "vitest";
import { BodyBudget } from "../src/transport/slack.js";

describe("BodyBudget: the request bodies the gateway holds at once", () => {
  it("reserves a request's declared length, refuses what does not fit, and gets it back on release", () => {
    const b = new BodyBudget(1000, 2500);
    const first = b.reserve({ "content-length": "1000" });
    const second = b.reserve({ "content-length": "1000" });
    expect([first, second]).toEqual([1000, 1000]);
    expect(b.reserve({ "content-length": "600" })).toBeUndefined();
    expect(b.reserve({ "content-length": "500" })).toBe(500);
    b.release(first!);
    expect(b.inUse).toBe(1500);
    expect(b.reserve({ "content-length": "900" })).toBe(900);
  });

  it("a request without a length, or declaring more than the limit, holds the per-request limit (raw-body stops it there)", () => {
    const b = new BodyBudget(1000, 2500);
    expect(b.reserve({})).toBe(1000);
    expect(b.reserve({ "content-length": "not a number" })).toBe(1000);
    expect(b.reserve({ "content-length": String(10 ** 12) })).toBeUndefined();
    b.release(1000);
    expect(b.reserve({ "content-length": String(10 ** 12) })).toBe(1001);
  });
});
