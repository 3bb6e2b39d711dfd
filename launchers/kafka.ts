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
import { DATA_DIR_PREFIX, OWNER_FILE, sweepStaleDataDirs } from "./kafka-datadirs.js";
import { describeCluster, tcpOpen } from "./kafka-external.js";
import {
  clientSecurityConfig,
  prepareSecuredCluster,
  scramFormatArgs,
  securedBrokerProperties,
} from "./kafka-secured.js";
import {
  cdsArchivePath,
  cdsOptions,
  findJava,
  jvmOptions,
  KafkaLaunchError,
  kafkaLibDir,
} from "./kafka-setup.js";
import type { KafkaClientSecurity, KafkaCluster, KafkaSet, StartKafkaOptions } from "./kafka-types.js";
import { freePorts } from "./ports.js";
import { startManaged, waitUntil, type ManagedProcess } from "./process.js";

export * from "./kafka-config.js";
export { sweepStaleDataDirs } from "./kafka-datadirs.js";
export * from "./kafka-external.js";
export { clientSecurityConfig, SECURED_USER } from "./kafka-secured.js";
export * from "./kafka-setup.js";
export type * from "./kafka-types.js";

const LOG4J_CONFIG = fileURLToPath(new URL("./kafka/log4j2.properties", import.meta.url));

/** The broker log's warnings and errors, then its last lines: what explains a failed start. */
async function logExcerpt(file: string): Promise<string> {
  let lines: string[];
  try {
    lines = (await readFile(file, "utf8")).split("\n");
  } catch {
    return `--- ${file}: (no log file) ---`;
  }
  const problems = lines.filter((line) => /^\[[^\]]+\] (WARN|ERROR|FATAL) /.test(line)).slice(-15);
  return [
    ...(problems.length > 0 ? [`--- ${file}: warnings and errors ---`, ...problems] : []),
    `--- ${file}: last lines ---`,
    ...lines.slice(-25),
  ].join("\n");
}

interface RunningCluster {
  cluster: KafkaCluster;
  process: ManagedProcess;
  /** Runs after the process exited (publishes a class data sharing archive). */
  afterExit?: (publish: boolean) => Promise<void>;
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

    const cds = archive ? await cdsOptions(archive) : { options: [] };
    const managed = startManaged({
      name: `kafka-${plan.name}`,
      command: options.java,
      args: [...cds.options, ...jvm, "kafka.Kafka", propertiesFile],
      logFile: stdoutFile,
      graceSeconds: options.graceSeconds ?? 20,
    });
    const brokers = [`127.0.0.1:${brokerPort}`];
    try {
      await waitUntil(
        async () => {
          if (!(await tcpOpen("127.0.0.1", brokerPort))) return false;
          const description = await describeCluster(brokers, 3000, secured?.resolved);
          return description.clusterId === clusterId && description.brokerCount > 0;
        },
        {
          what: `Kafka cluster ${plan.name} (${brokers[0]}, data ${dataDir})`,
          timeoutMs: options.startTimeoutMs ?? 60_000,
          intervalMs: 250,
          process: managed,
        },
      );
    } catch (error) {
      await managed.stop();
      await cds.afterExit?.(false);
      const serverLog = await logExcerpt(logFile);
      if (attempt < attempts && ADDRESS_IN_USE.test(serverLog + managed.tail())) {
        // Another process took one of the ports between our probe and the broker's bind: retry.
        options.logger?.info(
          { cluster: plan.name, brokerPort, controllerPort },
          "kafka port taken, retrying",
        );
        continue;
      }
      throw new KafkaLaunchError(`${(error as Error).message}\n${serverLog}`, { cause: error });
    }
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
        pid: managed.pid,
        logFile,
        ...(secured ? { security: secured.client } : {}),
      },
      process: managed,
      afterExit: cds.afterExit,
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
  const stop = async (): Promise<void> => {
    await Promise.all(
      running.map(async (entry) => {
        await entry.process.stop();
        await entry.afterExit?.(true);
      }),
    );
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
  let stopping: Promise<void> | undefined;
  return {
    clusters: running.map((entry) => entry.cluster),
    pids: running.map((entry) => entry.process.pid),
    stop: () => (stopping ??= stop()),
  };
}
