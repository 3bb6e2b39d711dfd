/** Pure parts of a local cluster's set-up: names, KRaft cluster ids, broker properties. */
import { randomBytes } from "node:crypto";

/** Default names: `dc1`, `dc2`, ... */
export function defaultClusterNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `dc${i + 1}`);
}

/** A random KRaft cluster id (base64url of 16 bytes; Kafka rejects ids that start with `-`). */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

/**
 * Broker properties of a single-node combined KRaft cluster for tests: replication factor 1 for every
 * internal topic (offsets, transactions, share groups), no topic auto-creation (topics are created
 * explicitly, so a typo cannot create a topic), small internal topics and thread pools.
 */
export function brokerProperties(input: {
  brokerPort: number;
  controllerPort: number;
  logDirs: string;
}): Record<string, string | number | boolean> {
  const { brokerPort, controllerPort } = input;
  return {
    "process.roles": "broker,controller",
    "node.id": 1,
    "controller.quorum.bootstrap.servers": `127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${brokerPort},CONTROLLER://127.0.0.1:${controllerPort}`,
    "advertised.listeners": `PLAINTEXT://127.0.0.1:${brokerPort}`,
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "log.dirs": input.logDirs,
    "auto.create.topics.enable": false,
    "delete.topic.enable": true,
    "num.partitions": 1,
    "default.replication.factor": 1,
    "min.insync.replicas": 1,
    "offsets.topic.replication.factor": 1,
    "offsets.topic.num.partitions": 1,
    "transaction.state.log.replication.factor": 1,
    "transaction.state.log.min.isr": 1,
    "transaction.state.log.num.partitions": 1,
    "share.coordinator.state.topic.replication.factor": 1,
    "share.coordinator.state.topic.min.isr": 1,
    "group.initial.rebalance.delay.ms": 0,
    "num.network.threads": 2,
    "num.io.threads": 4,
    "num.recovery.threads.per.data.dir": 1,
    "background.threads": 4,
    // The cleaner (compacted internal topics) allocates this buffer on the heap; 128 MB by default.
    "log.cleaner.dedupe.buffer.size": 8 * 1024 * 1024,
  };
}

export function formatProperties(properties: Record<string, string | number | boolean>): string {
  return Object.entries(properties)
    .map(([key, value]) => `${key}=${String(value)}`)
    .join("\n")
    .concat("\n");
}
