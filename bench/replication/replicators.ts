/**
 * "Replicator under test": one interface for every replicator the benchmark compares, so each one is
 * started, measured and stopped the same way. Implementations: MirrorMaker 2 in dedicated mode
 * (defaults and tuned) and the project's replicator (`replicator/cli.ts`, at-least-once and
 * exactly-once). Every process runs through `startManaged`, so none outlives the benchmark.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { KafkaCluster } from "../../launchers/kafka.js";
import { startManaged, type ManagedProcess } from "../../launchers/process.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const LOG4J_CONFIG = path.join(ROOT, "launchers/kafka/log4j2.properties");
const PROJECT_CLI = path.join(ROOT, "replicator/cli.ts");

export interface StartContext {
  source: KafkaCluster;
  destination: KafkaCluster;
  /** Regular expression matching (whole) the names of this run's source topics. */
  topicPattern: string;
  /** Unique per run: config files and logs go here. */
  workDir: string;
  runId: string;
  /** Directory holding the Kafka jars (MirrorMaker 2). */
  kafkaLib: string;
}

export interface ReplicatorUnderTest {
  /** Stable id used in results, e.g. `mm2-default`. */
  id: string;
  /** Human label for the table. */
  label: string;
  kind: "mirrormaker2" | "project";
  /** Executable of the replicating process below the guard (CPU and RSS are read from it). */
  processName: string;
  /** Settings that make this variant what it is (recorded in the results). */
  settings: Record<string, string | number | boolean>;
  /** Name of the destination topic for a source topic. */
  destinationTopic(sourceTopic: string, sourceCluster: string): string;
  /** Null when it can run here, else why not. */
  unavailable(): string | null;
  start(context: StartContext): Promise<ManagedProcess>;
}

// ------------------------------------------------------------------ MirrorMaker 2

/** Replication factors of 1 for every topic MirrorMaker 2 creates (single-node clusters). */
const SINGLE_NODE = {
  "replication.factor": 1,
  "checkpoints.topic.replication.factor": 1,
  "heartbeats.topic.replication.factor": 1,
  "offset-syncs.topic.replication.factor": 1,
  "offset.storage.replication.factor": 1,
  "status.storage.replication.factor": 1,
  "config.storage.replication.factor": 1,
  // No authorizer on the test brokers: ACL sync would only log errors.
  "sync.topic.acls.enabled": false,
};

/**
 * Tuned MirrorMaker 2: more tasks (one consumer/producer pair each), topic refresh every second, large
 * producer batches with a little linger and 5 requests in flight (Kafka Connect's default for source
 * producers is 1), and larger consumer fetches. Everything else is MirrorMaker 2's default.
 */
export function mm2TunedSettings(tasks: number): Record<string, string | number | boolean> {
  return {
    "tasks.max": tasks,
    "refresh.topics.interval.seconds": 1,
    "dc2.producer.batch.size": 524288,
    "dc2.producer.linger.ms": 10,
    "dc2.producer.max.in.flight.requests.per.connection": 5,
    "dc2.producer.buffer.memory": 67108864,
    "dc1.consumer.max.partition.fetch.bytes": 4194304,
    "dc1.consumer.fetch.max.bytes": 67108864,
    "dc1.consumer.max.poll.records": 4000,
  };
}

/** The mm2.properties of one run: dc1 → dc2 only, the run's topics only. */
export function mm2Properties(
  context: Pick<StartContext, "source" | "destination" | "topicPattern">,
  settings: Record<string, string | number | boolean>,
): string {
  const { source, destination } = context;
  const flow = `${source.name}->${destination.name}`;
  const reverse = `${destination.name}->${source.name}`;
  // Settings are written for dc1/dc2; rename the cluster prefixes when the clusters are named otherwise.
  const renamed = Object.entries(settings).map(([key, value]) => [
    key.replace(/^dc1\./, `${source.name}.`).replace(/^dc2\./, `${destination.name}.`),
    value,
  ]);
  const entries: [string, string | number | boolean][] = [
    ["clusters", `${source.name},${destination.name}`],
    [`${source.name}.bootstrap.servers`, source.brokers.join(",")],
    [`${destination.name}.bootstrap.servers`, destination.brokers.join(",")],
    [`${flow}.enabled`, true],
    [`${reverse}.enabled`, false],
    [`${flow}.topics`, context.topicPattern],
    ...Object.entries(SINGLE_NODE),
    ...(renamed as [string, string | number | boolean][]),
  ];
  return entries.map(([key, value]) => `${key}=${String(value)}`).join("\n") + "\n";
}

export function mirrorMaker2(variant: "default" | "tuned", tasks = 4): ReplicatorUnderTest {
  const settings = variant === "tuned" ? mm2TunedSettings(tasks) : {};
  return {
    id: `mm2-${variant}`,
    label: variant === "tuned" ? `MirrorMaker 2, tuned (tasks.max=${tasks})` : "MirrorMaker 2, defaults",
    kind: "mirrormaker2",
    processName: "java",
    settings,
    destinationTopic: (topic, sourceCluster) => `${sourceCluster}.${topic}`, // DefaultReplicationPolicy
    unavailable: () => null,
    async start(context) {
      const file = path.join(context.workDir, "mm2.properties");
      await writeFile(file, mm2Properties(context, settings));
      return startManaged({
        name: `mm2-${variant}`,
        command: "java",
        args: [
          // Same JVM for both variants: the heap connect-mirror-maker.sh uses at most, default GC and JIT.
          "-Xms256m",
          "-Xmx1g",
          "-XX:+ExitOnOutOfMemoryError",
          `-Dlog4j2.configurationFile=${LOG4J_CONFIG}`,
          `-Dkafka.logs.dir=${context.workDir}`,
          "-cp",
          `${context.kafkaLib}/*`,
          "org.apache.kafka.connect.mirror.MirrorMaker",
          file,
        ],
        logFile: path.join(context.workDir, "stdout.log"),
        graceSeconds: 10,
      });
    },
  };
}

// ------------------------------------------------------------------ the project's replicator

export type Delivery = "at-least-once" | "exactly-once";
/** `replicator.workers`: engine threads (replicator/pool.ts). */
export type ProjectWorkers = "auto" | number;

/** What `workers` comes to on this machine (replicator/config.ts `resolveWorkers`). */
function workersHere(workers: ProjectWorkers): string {
  return workers === "auto" ? `auto (${Math.min(4, availableParallelism())} here)` : String(workers);
}

/** The project replicator's configuration for one run (schema: replicator/config.ts, docs/replicator.md). */
export function projectConfig(
  context: Pick<StartContext, "source" | "destination" | "topicPattern" | "runId">,
  delivery: Delivery,
  discoveryIntervalMs: number,
  workers: ProjectWorkers = "auto",
): Record<string, unknown> {
  return {
    replicator: {
      id: `bench-${context.runId}`,
      delivery,
      workers,
      admin: { host: "127.0.0.1", port: 0 },
    },
    datacenters: [
      { name: context.source.name, brokers: context.source.brokers },
      { name: context.destination.name, brokers: context.destination.brokers },
    ],
    discovery: { intervalMs: discoveryIntervalMs, include: [context.topicPattern] },
    naming: "identity",
    replication: [
      { model: "full", sources: [context.source.name], destinations: [context.destination.name] },
    ],
  };
}

/** `nodeOptions`: extra Node options for the replicator process, e.g. `--cpu-prof` to profile it. */
export function projectReplicator(
  delivery: Delivery,
  discoveryIntervalMs = 1000,
  nodeOptions: readonly string[] = [],
  workers: ProjectWorkers = "auto",
): ReplicatorUnderTest {
  return {
    id: delivery === "exactly-once" ? "project-eos" : "project-alo",
    label: `project replicator, ${delivery}`,
    kind: "project",
    processName: path.basename(process.execPath),
    settings: {
      delivery,
      workers: workersHere(workers),
      "discovery.intervalMs": discoveryIntervalMs,
      naming: "identity",
    },
    destinationTopic: (topic) => topic,
    unavailable: () =>
      existsSync(PROJECT_CLI) ? null : `${path.relative(ROOT, PROJECT_CLI)} does not exist`,
    async start(context) {
      const file = path.join(context.workDir, "replicator.json");
      await writeFile(
        file,
        JSON.stringify(projectConfig(context, delivery, discoveryIntervalMs, workers), null, 2),
      );
      return startManaged({
        name: `replicator-${delivery}`,
        command: process.execPath,
        args: [...nodeOptions, "--import", "tsx", PROJECT_CLI, "--config", file, "--log-level", "warn"],
        cwd: ROOT,
        env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: "1", NO_COLOR: "1" },
        logFile: path.join(context.workDir, "stdout.log"),
        graceSeconds: 15,
      });
    },
  };
}

/** Every replicator the benchmark knows, by id. */
export function allReplicators(options: {
  mm2Tasks: number;
  projectWorkers: ProjectWorkers;
}): ReplicatorUnderTest[] {
  return [
    mirrorMaker2("default"),
    mirrorMaker2("tuned", options.mm2Tasks),
    projectReplicator("at-least-once", 1000, [], options.projectWorkers),
    projectReplicator("exactly-once", 1000, [], options.projectWorkers),
  ];
}
