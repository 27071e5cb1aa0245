import { describe, expect, it } from "vitest";
import { ProtocolError, decodeEntities, decodeNode, encodeValue, escapeAttr, escapeText, parseXml } from "@iaas/vsphere";

// The wire format without a server: XSD order, escaping, xsi:type handling. Everything else is
// tested against vcsim.

function decode(xml: string, type?: string): unknown {
  const root = parseXml(`<r xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">${xml}</r>`);
  const r = (root.r as Array<Record<string, unknown>>)[0]!;
  const v = (r.v as Array<Record<string, unknown>>)[0]!;
  return decodeNode(v, new Map([
    ["xsi", "http://www.w3.org/2001/XMLSchema-instance"],
    ["xsd", "http://www.w3.org/2001/XMLSchema"],
  ]), type);
}

describe("encoding", () => {
  it("writes fields in XSD order whatever the object's key order, base type fields first", () => {
    const xml = encodeValue(
      "device",
      {
        capacityInKB: 1024,
        unitNumber: 0,
        controllerKey: -100,
        backing: { diskMode: "persistent", fileName: "", _type: "VirtualDiskFlatVer2BackingInfo" },
        key: -101,
        _type: "VirtualDisk",
      },
      "VirtualDevice",
    );
    expect(xml).toBe(
      '<device xsi:type="VirtualDisk"><key>-101</key>' +
        '<backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName></fileName><diskMode>persistent</diskMode></backing>' +
        "<controllerKey>-100</controllerKey><unitNumber>0</unitNumber><capacityInKB>1024</capacityInKB></device>",
    );
  });

  it("infers xsi:type for anyType values and MoRefs", () => {
    expect(encodeValue("extraConfig", [{ key: "a", value: "x" }, { key: "b", value: true }, { key: "c", value: 7 }], "OptionValue[]")).toBe(
      '<extraConfig><key>a</key><value xsi:type="xsd:string">x</value></extraConfig>' +
        '<extraConfig><key>b</key><value xsi:type="xsd:boolean">true</value></extraConfig>' +
        '<extraConfig><key>c</key><value xsi:type="xsd:int">7</value></extraConfig>',
    );
    expect(encodeValue("value", { _type: "xsd:long", value: 5 }, "any")).toBe('<value xsi:type="xsd:long">5</value>');
    expect(encodeValue("pool", { type: "ResourcePool", value: "resgroup-1" }, "MoRef")).toBe(
      '<pool type="ResourcePool">resgroup-1</pool>',
    );
  });

  it("escapes text and attributes", () => {
    expect(escapeText(`a&b <c> "d" 'é'\r`)).toBe(`a&amp;b &lt;c&gt; "d" 'é'&#13;`);
    expect(escapeAttr(`a&"'<>\n`)).toBe("a&#38;&#34;&#39;&#60;&#62;&#10;");
    expect(encodeValue("name", `x</name><evil/>`, "string")).toBe("<name>x&lt;/name&gt;&lt;evil/&gt;</name>");
  });

  it("refuses what XML cannot carry, unknown fields and wrong primitive types", () => {
    expect(() => escapeText("bell\u0007")).toThrow(TypeError);
    expect(() => encodeValue("spec", { numCPUS: 2 }, "VirtualMachineConfigSpec")).toThrow(/no field numCPUS/);
    expect(() => encodeValue("spec", { numCPUs: "2" }, "VirtualMachineConfigSpec")).toThrow(/integer/);
    expect(() => encodeValue("spec", { numCPUs: 1.5 }, "VirtualMachineConfigSpec")).toThrow(/integer/);
    expect(() => encodeValue("device", { _type: "OptionValue", key: "k" }, "VirtualDevice")).toThrow(/not a VirtualDevice/);
  });
});

describe("decoding", () => {
  it("resolves xsi:type through any prefix bound to the XMLSchema-instance namespace", () => {
    const v = decode(
      '<v xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="xsd:int">0004</v>',
    );
    expect(v).toBe(4);
    const s = decode('<v xsi:type="xsd:string">0004</v>');
    expect(s).toBe("0004");
    // A prefix named like xsi but bound elsewhere is not an xsi:type.
    expect(decode('<v xmlns:q="urn:other" q:type="xsd:int">0004</v>')).toBe("0004");
  });

  it("decodes character references once", () => {
    expect(decodeEntities("&#34;a&#34; &#x27;b&#39; &amp;#34; &lt;")).toBe(`"a" 'b' &#34; <`);
    expect(decode("<v>a&amp;b &#60;c&#62; &#34;d&#34; &#39;é&#39;</v>")).toBe(`a&b <c> "d" 'é'`);
  });

  it("keeps one-element arrays as arrays where the schema says so", () => {
    const v = decode(
      '<v xsi:type="VirtualHardware"><numCPU>2</numCPU><memoryMB>64</memoryMB>' +
        '<device xsi:type="VirtualDisk"><key>5</key><capacityInKB>1024</capacityInKB>' +
        '<backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds] a.vmdk</fileName><datastore type="Datastore">ds-1</datastore><diskMode>persistent</diskMode><thinProvisioned>true</thinProvisioned></backing></device></v>',
    );
    expect(v).toEqual({
      _type: "VirtualHardware",
      numCPU: 2,
      memoryMB: 64,
      device: [
        {
          _type: "VirtualDisk",
          key: 5,
          capacityInKB: 1024,
          backing: {
            _type: "VirtualDiskFlatVer2BackingInfo",
            fileName: "[ds] a.vmdk",
            datastore: { type: "Datastore", value: "ds-1" },
            diskMode: "persistent",
            thinProvisioned: true,
          },
        },
      ],
    });
  });

  it("ArrayOf types, empty typed objects and enums", () => {
    expect(decode('<v xsi:type="ArrayOfManagedObjectReference"><ManagedObjectReference type="Datastore">d1</ManagedObjectReference></v>')).toEqual([
      { type: "Datastore", value: "d1" },
    ]);
    expect(decode('<v xsi:type="ArrayOfString"></v>')).toEqual([]);
    expect(decode('<v xsi:type="NotAuthenticated"></v>')).toEqual({ _type: "NotAuthenticated" });
    expect(decode('<v xsi:type="VirtualMachinePowerState">poweredOn</v>')).toBe("poweredOn");
  });

  it("an unknown subtype is decoded with its declared base type's fields", () => {
    const v = decode('<v xsi:type="VmFutureEvent"><key>12</key><chainId>3</chainId><createdTime>2026-01-01T00:00:00Z</createdTime><userName>u</userName></v>', "Event");
    expect(v).toEqual({ _type: "VmFutureEvent", key: 12, chainId: 3, createdTime: "2026-01-01T00:00:00Z", userName: "u" });
  });
});

describe("parsing (the transport's single-pass reader, without the validating pass)", () => {
  const parse = (xml: string) => parseXml(xml, false);

  it("reads elements by local name, attributes with their prefixes, text, CDATA, comments and self-closing tags", () => {
    const root = parse(
      '<?xml version="1.0"?><!-- c --><s:E xmlns:s="urn:s"><a t=\'x\' s:k="1 &amp; 2"><![CDATA[<raw>]]> &#34;q&#x22;</a><a/><b>t<!-- c --></b></s:E>',
    );
    const e = (root.E as Array<Record<string, unknown>>)[0]!;
    const [a1, a2] = e.a as Array<Record<string, unknown>>;
    expect(e["@_xmlns:s"]).toBe("urn:s");
    expect(a1).toEqual({ "@_t": "x", "@_s:k": "1 & 2", "#text": '<raw> "q"' });
    expect(a2).toEqual({ "#text": "" });
    expect((e.b as Array<Record<string, unknown>>)[0]!["#text"]).toBe("t");
  });

  it("refuses a mismatched or unclosed tag, an unquoted attribute and a DTD", () => {
    for (const bad of ["<a><b></a></b>", "<a><b></b>", '<a x=1></a>', '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', "<a", "<__proto__></__proto__>"]) {
      expect(() => parse(bad), bad).toThrow(ProtocolError);
    }
  });
});
