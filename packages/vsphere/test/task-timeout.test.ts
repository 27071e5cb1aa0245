import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TimeoutError, TransportError, type MoRef, type VimClient } from "@iaas/vsphere";
import { connect, mustFind, rejection, startVcsim, type Vcsim } from "./helpers.js";

// vcsim runs every task inside the request, so a task is never seen running — except one whose
// handler crashed: CreateVM_Task without a pool closes the connection and leaves its task `running`
// forever. That is the only way to exercise Task.wait's deadline against the simulator.
let sim: Vcsim;
let c: VimClient;

beforeAll(async () => {
  sim = await startVcsim({ demo: false });
  c = await connect(sim);
});

afterAll(async () => {
  await c?.logout();
  await sim?.stop();
});

describe("a task that never finishes", () => {
  let stuck: MoRef | undefined;

  it("a handler that closes the connection is a TransportError", async () => {
    const folder = await mustFind(c, "/DC0/vm");
    // Raw invoke on purpose: Folder.createVM would refuse this request.
    const err = await rejection(
      c.invoke(
        "CreateVM_Task",
        folder,
        [["config", { name: "never", guestId: "otherGuest", files: { vmPathName: "[LocalDS_0]" } }, "VirtualMachineConfigSpec"]],
        { returns: "MoRef" },
      ),
    );
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).method).toBe("CreateVM_Task");

    const [tm] = await c.retrieve([c.serviceContent.taskManager!], ["recentTask"]);
    const tasks = (tm!.props.recentTask as MoRef[]) ?? [];
    for (const t of tasks) {
      const info = await c.task(t).info();
      if (info.state === "running" && info.descriptionId === "Folder.createVm") stuck = t;
    }
    expect(stuck).toBeDefined();
  });

  it("Task.wait gives up at its deadline with a TimeoutError naming the task", async () => {
    const err = await rejection(c.task(stuck!).wait({ timeoutMs: 1_500 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).task).toEqual(stuck);
    expect((err as TimeoutError).timeoutMs).toBe(1_500);
    // The task is still running in vCenter; only the wait gave up.
    expect((await c.task(stuck!).info()).state).toBe("running");
  });
});
