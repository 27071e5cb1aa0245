import type { CallOptions, Vim25Client } from "../client.js";
import { isVimFault } from "../errors.js";
import { asArray, asNumber, asString, isObj, optString } from "../parse.js";
import { defaultCollector } from "../property.js";
import type { MoRef } from "../types.js";

/** A custom attribute definition (vim25 `CustomFieldDef`); `managedObjectType` unset: every type. */
export interface CustomFieldDef {
  key: number;
  name: string;
  type: string;
  managedObjectType?: string | undefined;
}

/** CustomFieldsManager property paths. */
export const CustomFieldsProps = { field: "field" } as const;

export function parseCustomFieldDef(v: unknown, where = "CustomFieldDef"): CustomFieldDef {
  const o = isObj(v) ? v : {};
  return {
    key: asNumber(o.key, `${where}.key`),
    name: asString(o.name, `${where}.name`),
    type: optString(o.type, `${where}.type`) ?? "",
    managedObjectType: optString(o.managedObjectType, `${where}.managedObjectType`),
  };
}

/**
 * An entity's `customValue` (CustomFieldStringValue key/value pairs) as key → value. The last
 * value of a key wins: vCenter holds one per key, but the simulator's SetField appends a value
 * instead of replacing it, so the newest is the last one.
 */
export function parseCustomValues(v: unknown): Map<number, string> {
  const out = new Map<number, string>();
  for (const cv of asArray(v)) {
    if (!isObj(cv)) continue;
    const key = typeof cv.key === "number" ? cv.key : Number(cv.key);
    if (!Number.isInteger(key)) continue;
    out.set(key, typeof cv.value === "string" ? cv.value : cv.value === undefined || cv.value === null ? "" : String(cv.value));
  }
  return out;
}

/**
 * The CustomFieldsManager managed object (govmomi `object.CustomFieldsManager`): custom attribute
 * definitions and their values on managed entities (visible in the vSphere Client as "Custom
 * Attributes").
 */
export class CustomFieldsManager {
  constructor(
    readonly client: Vim25Client,
    readonly ref: MoRef,
  ) {}

  /** The `field` property: every definition. */
  async field(opts: CallOptions = {}): Promise<CustomFieldDef[]> {
    const [r] = await defaultCollector(this.client).retrieve([this.ref], [CustomFieldsProps.field], opts);
    const fault = r ? Object.values(r.missing)[0] : undefined;
    if (fault) throw fault;
    return asArray(r?.props[CustomFieldsProps.field]).map((d, i) => parseCustomFieldDef(d, `field[${i}]`));
  }

  /** AddCustomFieldDef. A definition of that name (for that type) already there → VimFault DuplicateName. */
  async addCustomFieldDef(name: string, moType?: string, opts: CallOptions = {}): Promise<CustomFieldDef> {
    const r = await this.client.invoke(
      "AddCustomFieldDef",
      this.ref,
      [
        ["name", name, "string"],
        ["moType", moType, "string"],
      ],
      { ...opts, returns: "CustomFieldDef" },
    );
    return parseCustomFieldDef(r);
  }

  /** SetField: sets the value of field `key` on `entity` (an empty string clears it in the vSphere Client). */
  async setField(entity: MoRef, key: number, value: string, opts: CallOptions = {}): Promise<void> {
    await this.client.invoke(
      "SetField",
      this.ref,
      [
        ["entity", entity, "MoRef"],
        ["key", key, "int"],
        ["value", value, "string"],
      ],
      opts,
    );
  }

  /** The definition named `name` that applies to `moType` (one for every type counts too). */
  async find(name: string, moType: string, opts: CallOptions = {}): Promise<CustomFieldDef | undefined> {
    return pick(await this.field(opts), name, moType);
  }

  /**
   * The definition of `name` for `moType`, added when missing (govmomi `FindKey` + `Add`). Two
   * writers racing to add it: the loser meets DuplicateName and reads the winner's definition.
   */
  async ensure(name: string, moType: string, opts: CallOptions = {}): Promise<CustomFieldDef> {
    const found = await this.find(name, moType, opts);
    if (found) return found;
    try {
      return await this.addCustomFieldDef(name, moType, opts);
    } catch (err) {
      if (!isVimFault(err, "DuplicateName")) throw err;
      const again = await this.find(name, moType, opts);
      if (again) return again;
      throw err;
    }
  }
}

function pick(defs: CustomFieldDef[], name: string, moType: string): CustomFieldDef | undefined {
  return defs.find((d) => d.name === name && d.managedObjectType === moType) ?? defs.find((d) => d.name === name && !d.managedObjectType);
}
