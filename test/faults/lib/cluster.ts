/**
 * A three-node nats-server cluster on loopback with JetStream (file store per node), for the
 * scale-out simulation. Each node keeps its client port and store, so a killed node can be
 * started again and rejoin.
 */
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { startNatsServer, type NatsServer } from "@iaas/testkit";
import { freePort, until } from "./system.js";

export interface Cluster {
  nodes: NatsServer[];
  names: string[];
  urls: string[];
  /** The node by server name (`n0`..). */
  node(name: string): NatsServer;
  dispose(): Promise<void>;
}

export async function startCluster(size = 3): Promise<Cluster> {
  const clientPorts: number[] = [];
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) {
    clientPorts.push(await freePort());
    routePorts.push(await freePort());
  }
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
  const names = clientPorts.map((_, i) => `n${i}`);
  const nodes = await Promise.all(
    clientPorts.map((port, i) =>
      startNatsServer({
        port,
        args: ["--server_name", names[i]!, "--cluster_name", "iaas-faults", "--cluster", `nats://127.0.0.1:${routePorts[i]}`, "--routes", routes],
      }),
    ),
  );
  const urls = nodes.map((n) => n.url);
  // JetStream answers once the nodes have found each other and elected a meta leader, but a
  // stream of `size` replicas can be placed only once the leader knows every peer ("no suitable
  // peers for placement" before that): wait until a probe stream of that many replicas is made.
  const nc = await connect({ servers: urls });
  try {
    await until(
      `a JetStream stream placed on all ${size} nodes`,
      async () => {
        const jsm = await jetstreamManager(nc, { timeout: 2000 });
        await jsm.getAccountInfo();
        await jsm.streams.add({ name: "CLUSTER_PROBE", subjects: ["cluster.probe"], num_replicas: size });
        await jsm.streams.delete("CLUSTER_PROBE");
        return true;
      },
      30_000,
    );
  } finally {
    await nc.close();
  }
  return {
    nodes,
    names,
    urls,
    node: (name) => nodes[names.indexOf(name)]!,
    dispose: async () => {
      await Promise.all(nodes.map((n) => n.dispose().catch(() => undefined)));
    },
  };
}
