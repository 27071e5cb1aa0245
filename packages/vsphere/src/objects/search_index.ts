import type { Arg, CallOptions, Vim25Client } from "../client.js";
import { optMoRef } from "../parse.js";
import type { MoRef } from "../types.js";

/** The SearchIndex managed object: lookups that answer "not found" with `undefined`, not a fault. */
export class SearchIndex {
  constructor(
    readonly client: Vim25Client,
    readonly ref: MoRef,
  ) {}

  private async find(method: string, args: readonly Arg[], opts: CallOptions): Promise<MoRef | undefined> {
    const r = await this.client.invoke(method, this.ref, args, { ...opts, returns: "MoRef" });
    return optMoRef(r, method);
  }

  /** FindByInventoryPath, e.g. `/DC0/vm/DC0_H0_VM0` or `DC0/host/DC0_C0/Resources`. */
  findByInventoryPath(inventoryPath: string, opts: CallOptions = {}): Promise<MoRef | undefined> {
    return this.find("FindByInventoryPath", [["inventoryPath", inventoryPath, "string"]], opts);
  }

  /** FindChild: a direct child of a folder, datacenter, compute resource or pool, by name. */
  findChild(entity: MoRef, name: string, opts: CallOptions = {}): Promise<MoRef | undefined> {
    return this.find(
      "FindChild",
      [
        ["entity", entity, "MoRef"],
        ["name", name, "string"],
      ],
      opts,
    );
  }

  /** FindByUuid: a VM by BIOS uuid (or instance uuid), or a host when `vmSearch` is false. */
  findByUuid(
    uuid: string,
    o: CallOptions & { vmSearch?: boolean; instanceUuid?: boolean; datacenter?: MoRef } = {},
  ): Promise<MoRef | undefined> {
    return this.find(
      "FindByUuid",
      [
        ["datacenter", o.datacenter, "MoRef"],
        ["uuid", uuid, "string"],
        ["vmSearch", o.vmSearch ?? true, "boolean"],
        ["instanceUuid", o.instanceUuid, "boolean"],
      ],
      o,
    );
  }

  /** FindByDatastorePath: the VM whose .vmx is at `[ds] dir/name.vmx` in a datacenter. */
  findByDatastorePath(datacenter: MoRef, path: string, opts: CallOptions = {}): Promise<MoRef | undefined> {
    return this.find(
      "FindByDatastorePath",
      [
        ["datacenter", datacenter, "MoRef"],
        ["path", path, "string"],
      ],
      opts,
    );
  }

  /** FindByIp: a VM by guest IP (needs tools), or a host when `vmSearch` is false. */
  findByIp(ip: string, o: CallOptions & { vmSearch?: boolean; datacenter?: MoRef } = {}): Promise<MoRef | undefined> {
    return this.find(
      "FindByIp",
      [
        ["datacenter", o.datacenter, "MoRef"],
        ["ip", ip, "string"],
        ["vmSearch", o.vmSearch ?? true, "boolean"],
      ],
      o,
    );
  }
}
