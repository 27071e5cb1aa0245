import { describe, expect, it } from "vitest";
import { parseVcenterSources, vcenterOfSource } from "@iaas/contracts";

describe("VCENTER_SOURCES", () => {
  it("parses id=source pairs, trimming spaces and skipping empty entries", () => {
    expect(parseVcenterSources(" default=https://vc-a.example.com/sdk , dr-site=https://vc-b.example.com/,")).toEqual([
      { id: "default", source: "https://vc-a.example.com/sdk" },
      { id: "dr-site", source: "https://vc-b.example.com/" },
    ]);
  });

  it("is empty when unset or empty", () => {
    expect(parseVcenterSources(undefined)).toEqual([]);
    expect(parseVcenterSources("")).toEqual([]);
  });

  it("keeps an = inside the source", () => {
    expect(parseVcenterSources("lab=https://vc.example.com/sdk?x=1")).toEqual([{ id: "lab", source: "https://vc.example.com/sdk?x=1" }]);
  });

  it("refuses a pair without id, a bad id, an empty source and a source given twice", () => {
    expect(() => parseVcenterSources("https://vc.example.com")).toThrow(/not id=source/);
    expect(() => parseVcenterSources("=https://vc.example.com")).toThrow(/not id=source/);
    expect(() => parseVcenterSources("Lab=https://vc.example.com")).toThrow(/not a vCenter id/);
    expect(() => parseVcenterSources("lab=")).toThrow(/empty source/);
    expect(() => parseVcenterSources("a=https://vc.example.com,b=https://vc.example.com")).toThrow(/twice/);
  });

  it("routes everything to default when no sources are configured", () => {
    expect(vcenterOfSource([], "https://anything.example.com/sdk")).toBe("default");
  });

  it("routes by exact source or prefix, the longest prefix winning, and unknown sources to none", () => {
    const s = parseVcenterSources("default=https://vc-a.example.com/,b=https://vc-b.example.com/,b-sdk=https://vc-b.example.com/sdk");
    expect(vcenterOfSource(s, "https://vc-a.example.com/")).toBe("default");
    expect(vcenterOfSource(s, "https://vc-a.example.com/sdk")).toBe("default");
    expect(vcenterOfSource(s, "https://vc-b.example.com/other")).toBe("b");
    expect(vcenterOfSource(s, "https://vc-b.example.com/sdk")).toBe("b-sdk");
    expect(vcenterOfSource(s, "https://vc-c.example.com/sdk")).toBeUndefined();
  });
});
