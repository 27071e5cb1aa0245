import { Vim25Client, type CallOptions } from "./client.js";
import { defaultCollector, defaultViewManager, type ObjectProps, type PropertyCollector, type RetrieveContainerOptions, type ViewManager } from "./property.js";
import { CustomFieldsManager } from "./objects/custom_fields_manager.js";
import { EventManager } from "./objects/event_manager.js";
import { Folder } from "./objects/folder.js";
import { SearchIndex } from "./objects/search_index.js";
import { SessionManager } from "./objects/session_manager.js";
import { VirtualMachine } from "./objects/virtual_machine.js";
import { Task } from "./task.js";
import type { MoRef } from "./types.js";

/**
 * The service instance as callers use it (govmomi's `govmomi.Client` over `vim25.Client`): the
 * client's transport and session, plus the managers of its ServiceContent and wrappers for any
 * managed object. It sits above `objects/`; the objects only know the client below it.
 */
export class VimClient extends Vim25Client {
  get propertyCollector(): PropertyCollector {
    return defaultCollector(this);
  }

  get viewManager(): ViewManager {
    return defaultViewManager(this);
  }

  get searchIndex(): SearchIndex {
    return new SearchIndex(this, this.serviceRef("searchIndex"));
  }

  get sessionManager(): SessionManager {
    return new SessionManager(this, this.serviceRef("sessionManager"));
  }

  get eventManager(): EventManager {
    return new EventManager(this, this.serviceRef("eventManager"));
  }

  get customFieldsManager(): CustomFieldsManager {
    return new CustomFieldsManager(this, this.serviceRef("customFieldsManager"));
  }

  get rootFolder(): Folder {
    return new Folder(this, this.serviceContent.rootFolder);
  }

  vm(ref: MoRef): VirtualMachine {
    return new VirtualMachine(this, ref);
  }

  folder(ref: MoRef): Folder {
    return new Folder(this, ref);
  }

  task(ref: MoRef): Task {
    return new Task(this, ref);
  }

  /** Properties of specific objects; see PropertyCollector.retrieve. */
  retrieve(objs: readonly MoRef[], paths: readonly string[], opts?: CallOptions): Promise<ObjectProps[]> {
    return this.propertyCollector.retrieve(objs, paths, opts);
  }

  /** Properties of every object of `type` under a container; see PropertyCollector.retrieveContainer. */
  retrieveContainer(type: string, paths: readonly string[], opts?: RetrieveContainerOptions): Promise<ObjectProps[]> {
    return this.propertyCollector.retrieveContainer(type, paths, opts);
  }
}
