/**
 * Local Apache Kafka clusters on demand, without Docker.
 *
 * {@link startKafkaClusters} starts one single-node KRaft cluster (combined broker + controller) per
 * datacenter name, each in its own temporary data dir, on 127.0.0.1 with free ports, and waits until
 * each one answers a kafkajs admin call. The jars come from `scripts/lib/kafka.sh` (`lp_ensure_kafka`),
 * which resolves `launchers/kafka/pom.xml` into `$LP_CACHE_DIR/kafka/<version>/lib`.
 *
 * {@link connectKafkaClusters} is the "external" mode for users who already run Kafka: it takes the
 * brokers per datacenter (`LP_KAFKA_BROKERS="dc1=host:9092;dc2=host:9093"`), checks that each cluster
 * answers and returns the same shape with a `stop()` that does nothing.
 *
 * A launched set can also `kill(name)` a broker (SIGKILL of its JVM: a datacenter outage for tests) and
 * `restart(name)` it on the same ports and data; that lifecycle is in ./kafka-broker.ts.
 *
 * Every process runs through {@link startManaged}, so no broker outlives the Node process that started
 * it, even when that process is SIGKILLed. See docs/kafka.md.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { kafkaSecuritySchema, resolveKafkaSecurity, type ResolvedKafkaSecurity } from "../kafka/security.js";
import { brokerProperties, defaultClusterNames, formatProperties, newClusterId } from "./kafka-config.js";
import { brokerHandle, launchBroker, type BrokerLaunch, type BrokerProcess } from "./kafka-broker.js";
import { DATA_DIR_PREFIX, OWNER_FILE, sweepStaleDataDirs } from "./kafka-datadirs.js";
import {
  clientSecurityConfig,
  prepareSecuredCluster,
  scramFormatArgs,
  securedBrokerProperties,
} from "./kafka-secured.js";
import { cdsArchivePath, findJava, jvmOptions, KafkaLaunchError, kafkaLibDir } from "./kafka-setup.js";
import type { KafkaClientSecurity, KafkaCluster, KafkaSet, StartKafkaOptions } from "./kafka-types.js";
import { freePorts } from "./ports.js";
import { startManaged } from "./process.js";

export * from "./kafka-config.js";
export { sweepStaleDataDirs } from "./kafka-datadirs.js";
export * from "./kafka-external.js";
export { clientSecurityConfig, SECURED_USER } from "./kafka-secured.js";
export * from "./kafka-setup.js";
export type * from "./kafka-types.js";

const LOG4J_CONFIG = fileURLToPath(new URL("./kafka/log4j2.properties", import.meta.url));

/** A started cluster: what it hands out, how it was launched (for restarts), and its first process. */
interface RunningCluster {
  cluster: KafkaCluster;
  launch: BrokerLaunch;
  broker: BrokerProcess;
}

interface ClusterPlan {
  name: string;
  brokerPort: number;
  controllerPort: number;
  /** Both ports were chosen by us: on a bind conflict, retry with fresh ones. */
  dynamicPorts: boolean;
}

async function runToCompletion(
  options: Parameters<typeof startManaged>[0],
  what: string,
  timeoutMs: number,
): Promise<void> {
  const managed = startManaged(options);
  const timer = setTimeout(() => void managed.stop(), timeoutMs);
  const exit = await managed.exited;
  clearTimeout(timer);
  if (exit.code !== 0) {
    throw new KafkaLaunchError(
      `${what} failed (exit ${exit.code ?? exit.signal ?? "?"}):\n${managed.tail(30)}`,
    );
  }
}

const ADDRESS_IN_USE = /Address already in use|BindException/;

/**
 * A secured cluster's set-up in its data dir: certificates, password, the SASL_SSL listener's properties
 * (an extra PLAINTEXT loopback port for the inter-broker listener), the SCRAM users of the storage format,
 * and the resolved client settings the start probe uses.
 */
async function secure(
  dataDir: string,
  brokerPort: number,
  controllerPort: number,
): Promise<{
  client: KafkaClientSecurity;
  properties: Record<string, string>;
  formatArgs: string[];
  resolved: ResolvedKafkaSecurity;
}> {
  const client = await prepareSecuredCluster(dataDir);
  const password = await readFile(client.passwordFile, "utf8");
  return {
    client,
    properties: securedBrokerProperties({ brokerPort, controllerPort, dataDir, password }),
    formatArgs: scramFormatArgs(password),
    resolved: resolveKafkaSecurity(
      kafkaSecuritySchema.parse(clientSecurityConfig(client)),
      `kafka cluster in ${dataDir}`,
    ),
  };
}

async function startCluster(
  plan: ClusterPlan,
  options: StartKafkaOptions & { libDir: string; java: string; classDataSharing: boolean },
  dataDirs: string[],
): Promise<RunningCluster> {
  const attempts = plan.dynamicPorts ? 3 : 1;
  let { brokerPort, controllerPort } = plan;
  for (let attempt = 1; ; attempt++) {
    const started = Date.now();
    if (attempt > 1) [brokerPort, controllerPort] = (await freePorts(2)) as [number, number];
    const dataDir = await mkdtemp(join(options.baseDir ?? tmpdir(), `${DATA_DIR_PREFIX}${plan.name}-`));
    dataDirs.push(dataDir);
    await writeFile(join(dataDir, OWNER_FILE), `${process.pid}\n`);
    const logsDir = join(dataDir, "logs");
    await mkdir(logsDir);
    const propertiesFile = join(dataDir, "server.properties");
    const secured =
      options.security === "sasl_ssl" ? await secure(dataDir, brokerPort, controllerPort) : undefined;
    await writeFile(
      propertiesFile,
      formatProperties({
        ...brokerProperties({ brokerPort, controllerPort, logDirs: join(dataDir, "kraft") }),
        ...secured?.properties,
        ...options.brokerProperties,
      }),
    );
    const clusterId = newClusterId();
    const classpath = join(options.libDir, "*");
    const heap = options.heap ?? process.env.LP_KAFKA_HEAP ?? "256m";
    const jvm = [
      ...jvmOptions(heap),
      ...(options.jvmOptions ?? []),
      `-Dlog4j2.configurationFile=${LOG4J_CONFIG}`,
      `-Dkafka.logs.dir=${logsDir}`,
      `-Dlp.kafka.log.level=${options.logLevel ?? "INFO"}`,
      "-cp",
      classpath,
    ];
    const logFile = join(logsDir, "server.log");
    const stdoutFile = join(logsDir, "stdout.log");

    const archive = options.classDataSharing ? cdsArchivePath(options.libDir, options.java) : undefined;

    await runToCompletion(
      {
        name: `kafka-${plan.name}-format`,
        command: options.java,
        args: [
          ...jvm.filter((option) => !option.startsWith("-Xm")),
          "-Xmx128m",
          ...(archive && existsSync(archive) ? [`-XX:SharedArchiveFile=${archive}`, "-Xlog:cds=off"] : []),
          "kafka.tools.StorageTool",
          "format",
          "--standalone",
          "-t",
          clusterId,
          "-c",
          propertiesFile,
          ...(secured?.formatArgs ?? []),
        ],
        logFile: stdoutFile,
      },
      `kafka-${plan.name}: formatting the storage in ${dataDir}`,
      60_000,
    );

    const launch: BrokerLaunch = {
      name: plan.name,
      java: options.java,
      args: [...jvm, "kafka.Kafka", propertiesFile],
      ...(archive ? { cdsArchive: archive } : {}),
      logFile,
      stdoutFile,
      dataDir,
      brokerPort,
      controllerPort,
      clusterId,
      ...(secured ? { security: secured.resolved } : {}),
      startTimeoutMs: options.startTimeoutMs ?? 60_000,
      graceSeconds: options.graceSeconds ?? 20,
    };
    let broker: BrokerProcess;
    try {
      broker = await launchBroker(launch);
    } catch (error) {
      if (attempt < attempts && ADDRESS_IN_USE.test((error as Error).message)) {
        // Another process took one of the ports between our probe and the broker's bind: retry.
        options.logger?.info(
          { cluster: plan.name, brokerPort, controllerPort },
          "kafka port taken, retrying",
        );
        continue;
      }
      throw error;
    }
    const brokers = [`127.0.0.1:${brokerPort}`];
    options.logger?.info(
      {
        cluster: plan.name,
        brokers,
        dataDir,
        ms: Date.now() - started,
        security: options.security ?? "plaintext",
      },
      "kafka cluster ready",
    );
    return {
      cluster: {
        name: plan.name,
        brokers,
        dataDir,
        clusterId,
        pid: broker.process.pid,
        logFile,
        ...(secured ? { security: secured.client } : {}),
      },
      launch,
      broker,
    };
  }
}

/**
 * Starts one single-node KRaft cluster per name, in parallel, and resolves once each answers
 * `describeCluster`. On failure everything already started is stopped (and the data dirs removed
 * unless `keepData`) and a {@link KafkaLaunchError} with the broker log tail is thrown.
 */
export async function startKafkaClusters(options: StartKafkaOptions = {}): Promise<KafkaSet> {
  const names = options.names ?? defaultClusterNames(options.count ?? 2);
  if (names.length === 0) throw new KafkaLaunchError("startKafkaClusters: no cluster names");
  if (new Set(names).size !== names.length) {
    throw new KafkaLaunchError(`startKafkaClusters: duplicate cluster names in ${names.join(",")}`);
  }
  for (const [field, list] of [
    ["ports", options.ports],
    ["controllerPorts", options.controllerPorts],
  ] as const) {
    if (list && list.length !== names.length) {
      throw new KafkaLaunchError(
        `startKafkaClusters: ${field} has ${list.length} entries for ${names.length} names`,
      );
    }
  }
  const libDir = options.libDir ?? kafkaLibDir();
  const classDataSharing = options.classDataSharing ?? process.env.LP_KAFKA_CDS !== "0";
  const java = findJava();
  if (!options.keepData) await sweepStaleDataDirs(options.baseDir);
  // All free ports are reserved at once so that no two clusters get the same one; a port given
  // explicitly for one listener leaves the other free to choose.
  const explicit = new Set([...(options.ports ?? []), ...(options.controllerPorts ?? [])]);
  const dynamic = (await freePorts(names.length * 2 + explicit.size)).filter((port) => !explicit.has(port));
  const pick = (): number => dynamic.shift() as number;
  const plans: ClusterPlan[] = names.map((name, i) => {
    const brokerPort = options.ports?.[i];
    const controllerPort = options.controllerPorts?.[i];
    return {
      name,
      brokerPort: brokerPort ?? pick(),
      controllerPort: controllerPort ?? pick(),
      dynamicPorts: brokerPort === undefined && controllerPort === undefined,
    };
  });

  const dataDirs: string[] = [];
  const results = await Promise.allSettled(
    plans.map((plan) => startCluster(plan, { ...options, libDir, java, classDataSharing }, dataDirs)),
  );
  const running = results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  // A restart changes the guard pid: the cluster's `pid` follows it.
  const handles = running.map((entry) =>
    brokerHandle(entry.launch, entry.broker, {
      onStart: (pid) => (entry.cluster.pid = pid),
      ...(options.logger ? { logger: options.logger } : {}),
    }),
  );
  const stop = async (): Promise<void> => {
    await Promise.all(handles.map((handle) => handle.stop()));
    if (!options.keepData) {
      await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
    }
  };
  const failures = results.flatMap((result) =>
    result.status === "rejected" ? [result.reason as Error] : [],
  );
  if (failures.length > 0) {
    await stop();
    const message = failures.map((failure) => failure.message).join("\n\n");
    throw new KafkaLaunchError(message, { cause: failures[0] });
  }
  const handleOf = (name: string): (typeof handles)[number] => {
    const index = running.findIndex((entry) => entry.cluster.name === name);
    if (index < 0) {
      throw new KafkaLaunchError(`no Kafka cluster "${name}" (clusters: ${names.join(", ")})`);
    }
    return handles[index]!;
  };
  let stopping: Promise<void> | undefined;
  return {
    clusters: running.map((entry) => entry.cluster),
    get pids() {
      return handles.map((handle) => handle.pid());
    },
    kill: async (name) => handleOf(name).kill(),
    restart: async (name) => handleOf(name).restart(),
    stop: () => (stopping ??= stop()),
  };
}
