/**
 * Reaching a Kafka cluster: the TCP and metadata probes, and the "external" mode for users who already
 * run Kafka (`LP_KAFKA_BROKERS="dc1=host:9092;dc2=host:9093"`).
 */
import { Socket } from "node:net";
import { createKafka, SILENT_LOGGER } from "../kafka/client.js";
import type { ResolvedKafkaSecurity } from "../kafka/security.js";
import { KafkaLaunchError } from "./kafka-setup.js";
import type { KafkaCluster, KafkaSet } from "./kafka-types.js";
import { waitUntil } from "./process.js";

/** True when something accepts TCP connections on host:port. */
export function tcpOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.connect(port, host);
  });
}

/** Asks a cluster for its metadata with kafkajs (quiet, no retries); returns the cluster id. */
export async function describeCluster(
  brokers: string[],
  timeoutMs = 3000,
  security?: ResolvedKafkaSecurity,
): Promise<{ clusterId: string; brokerCount: number }> {
  const kafka = createKafka(
    {
      clientId: "lp-kafka-launcher",
      brokers,
      connectionTimeoutMs: Math.min(timeoutMs, 3000),
      requestTimeoutMs: timeoutMs,
      retry: { retries: 0 },
      ...(security ? { security } : {}),
    },
    SILENT_LOGGER,
  );
  const admin = kafka.admin();
  try {
    await admin.connect();
    const description = await admin.describeCluster();
    return { clusterId: description.clusterId, brokerCount: description.brokers.length };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Parses `dc1=host:9092,host:9094;dc2=host:9093` into brokers per datacenter.
 * Errors name the variable and the offending entry.
 */
export function parseKafkaBrokers(spec: string, variable = "LP_KAFKA_BROKERS"): Map<string, string[]> {
  const result = new Map<string, string[]>();
  const entries = spec
    .split(";")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 0)
    throw new KafkaLaunchError(`${variable} is empty: expected dc1=host:port;dc2=host:port`);
  for (const entry of entries) {
    const equals = entry.indexOf("=");
    const name = equals > 0 ? entry.slice(0, equals).trim() : "";
    if (!/^[A-Za-z0-9._-]+$/.test(name)) {
      throw new KafkaLaunchError(`${variable}: "${entry}" is not name=host:port[,host:port]`);
    }
    if (result.has(name)) throw new KafkaLaunchError(`${variable}: datacenter "${name}" given twice`);
    const brokers = entry
      .slice(equals + 1)
      .split(",")
      .map((broker) => broker.trim())
      .filter((broker) => broker !== "");
    if (brokers.length === 0) throw new KafkaLaunchError(`${variable}: datacenter "${name}" has no brokers`);
    for (const broker of brokers) {
      const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d+)$/.exec(broker);
      const port = Number(match?.[2]);
      if (!match || port < 1 || port > 65535) {
        throw new KafkaLaunchError(`${variable}: broker "${broker}" of "${name}" is not host:port`);
      }
    }
    result.set(name, brokers);
  }
  return result;
}

/**
 * External mode: uses clusters someone else runs. `brokers` maps datacenter names to bootstrap
 * servers (default: `LP_KAFKA_BROKERS` parsed by {@link parseKafkaBrokers}). Checks that each cluster
 * answers `describeCluster` and returns a {@link KafkaSet} whose `stop()` does nothing and whose
 * `kill` / `restart` reject.
 */
export async function connectKafkaClusters(
  options: { brokers?: string | Record<string, string[]>; timeoutMs?: number } = {},
): Promise<KafkaSet> {
  const source = options.brokers ?? process.env.LP_KAFKA_BROKERS;
  if (source === undefined)
    throw new KafkaLaunchError("LP_KAFKA_BROKERS is not set: expected dc1=host:port;dc2=...");
  const map = typeof source === "string" ? parseKafkaBrokers(source) : new Map(Object.entries(source));
  const clusters: KafkaCluster[] = [...map].map(([name, brokers]) => ({ name, brokers }));
  const timeoutMs = options.timeoutMs ?? 10_000;
  await Promise.all(
    clusters.map(async (cluster) => {
      try {
        await waitUntil(async () => (await describeCluster(cluster.brokers)).brokerCount > 0, {
          what: `Kafka cluster ${cluster.name} (${cluster.brokers.join(",")})`,
          timeoutMs,
          intervalMs: 500,
        });
      } catch (error) {
        throw new KafkaLaunchError(`external ${(error as Error).message}`, { cause: error });
      }
    }),
  );
  // Someone else runs these brokers: there is no process here to kill or start.
  const notOurs = (what: string) => async (name: string) => {
    throw new KafkaLaunchError(
      `external mode: cannot ${what} Kafka cluster "${name}", its brokers are not run by this launcher`,
    );
  };
  return {
    clusters,
    pids: [],
    kill: notOurs("kill"),
    restart: notOurs("restart"),
    stop: async () => undefined,
  };
}
