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
import { createHash, randomBytes } from "node:crypto";
import {
  accessSync,
  constants,
  existsSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
} from "node:fs";
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { createServer, Socket } from "node:net";
import { homedir, tmpdir } from "node:os";
import { basename, delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel } from "kafkajs";
import { pidAlive, startManaged, waitUntil, type ManagedProcess } from "./process.js";

const POM = fileURLToPath(new URL("./kafka/pom.xml", import.meta.url));
const LOG4J_CONFIG = fileURLToPath(new URL("./kafka/log4j2.properties", import.meta.url));
const SETUP_HINT =
  "run the setup first: `bash -c '. scripts/lib/env.sh && . scripts/lib/kafka.sh && lp_ensure_kafka'` " +
  "(needs Java 17+ and Maven), or set LP_KAFKA_LIB to a directory holding the Kafka jars";

export interface KafkaCluster {
  /** Datacenter name, e.g. `dc1`. */
  name: string;
  /** Bootstrap servers, `host:port`. */
  brokers: string[];
  /** Data dir of a launched cluster (config, KRaft logs, `logs/server.log`); absent in external mode. */
  dataDir?: string;
  /** KRaft cluster id of a launched cluster. */
  clusterId?: string;
  /** Pid of the managed process (guard) running the broker; absent in external mode. */
  pid?: number;
  /** The broker's log4j log file (launched clusters). */
  logFile?: string;
}

export interface KafkaSet {
  clusters: KafkaCluster[];
  /** Pids of the managed broker processes (empty in external mode). */
  pids: number[];
  /** Stops launched brokers and deletes their data dirs (unless `keepData`); a no-op in external mode. */
  stop(): Promise<void>;
}

/** Minimal structured logger (pino-compatible). */
export interface LauncherLogger {
  info(obj: object, msg?: string): void;
}

export interface StartKafkaOptions {
  /** One cluster per name. Default: `count` names `dc1`, `dc2`, ... */
  names?: string[];
  /** Number of clusters when `names` is not given (default 2). */
  count?: number;
  /** Explicit client (PLAINTEXT) ports, aligned with `names`; default: free ports. */
  ports?: number[];
  /** Explicit controller ports, aligned with `names`; default: free ports. */
  controllerPorts?: number[];
  /** Directory holding the Kafka jars; default {@link kafkaLibDir}(). */
  libDir?: string;
  /** Parent of the per-cluster data dirs; default the OS temp dir. */
  baseDir?: string;
  /** Keep the data dirs after `stop()` (and after a failed start). */
  keepData?: boolean;
  /** JVM max heap, e.g. `256m` (default `LP_KAFKA_HEAP` or `256m`). */
  heap?: string;
  /** Extra JVM options appended after the defaults. */
  jvmOptions?: string[];
  /** Broker properties that override or extend the defaults of {@link brokerProperties}. */
  brokerProperties?: Record<string, string | number | boolean>;
  /** log4j level of the broker's `server.log` (default INFO). */
  logLevel?: "ERROR" | "WARN" | "INFO" | "DEBUG";
  /**
   * Class data sharing: the first broker that finds no archive writes one when it stops
   * (`-XX:ArchiveClassesAtExit`), later brokers map it (`-XX:SharedArchiveFile`) and start about a
   * third faster. Default true unless `LP_KAFKA_CDS=0`.
   */
  classDataSharing?: boolean;
  /** How long one cluster may take to answer (default 60 s). */
  startTimeoutMs?: number;
  /** Seconds between SIGTERM and SIGKILL on stop (default 20). */
  graceSeconds?: number;
  logger?: LauncherLogger;
}

/** A startup failure, with the broker's log tail in the message. */
export class KafkaLaunchError extends Error {
  readonly code = "KAFKA_LAUNCH_FAILED";
  readonly retriable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KafkaLaunchError";
  }
}

/** The Kafka version the project uses: `<kafka.version>` of launchers/kafka/pom.xml. */
export function kafkaVersion(): string {
  const match = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(readFileSync(POM, "utf8"));
  if (!match?.[1]) throw new KafkaLaunchError(`no <kafka.version> in ${POM}`);
  return match[1].trim();
}

/** `$LP_CACHE_DIR`, default `${XDG_CACHE_HOME:-~/.cache}/license-platform` (as scripts/lib/env.sh). */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LP_CACHE_DIR) return env.LP_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "license-platform");
}

/**
 * The directory holding the Kafka jars: `LP_KAFKA_LIB` when set, else the cache path that
 * `lp_ensure_kafka` fills. Throws with the setup command when it is missing or incomplete.
 */
export function kafkaLibDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LP_KAFKA_LIB) {
    if (!existsSync(env.LP_KAFKA_LIB)) {
      throw new KafkaLaunchError(`LP_KAFKA_LIB=${env.LP_KAFKA_LIB} does not exist: ${SETUP_HINT}`);
    }
    return env.LP_KAFKA_LIB;
  }
  const dir = join(cacheDir(env), "kafka", kafkaVersion());
  const stamp = join(dir, ".complete");
  const pomHash = createHash("sha256").update(readFileSync(POM)).digest("hex");
  if (!existsSync(stamp)) {
    throw new KafkaLaunchError(`Kafka ${kafkaVersion()} jars not found in ${dir}/lib: ${SETUP_HINT}`);
  }
  if (readFileSync(stamp, "utf8").trim() !== pomHash) {
    throw new KafkaLaunchError(
      `Kafka jars in ${dir}/lib are stale (launchers/kafka/pom.xml changed): ${SETUP_HINT}`,
    );
  }
  return join(dir, "lib");
}

/** The `java` to run: `$JAVA_HOME/bin/java`, else the first on PATH. */
export function findJava(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [
    ...(env.JAVA_HOME ? [join(env.JAVA_HOME, "bin", "java")] : []),
    ...(env.PATH ?? "").split(delimiter).map((dir) => join(dir, "java")),
  ];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new KafkaLaunchError("no `java` found (JAVA_HOME or PATH): Kafka needs Java 17 or newer");
}

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

/** Default JVM options: small heap, serial GC, fast start (C1 only), no perf data file. */
export function jvmOptions(heap: string): string[] {
  return [
    `-Xmx${heap}`,
    "-Xms64m",
    "-Xss512k",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
  ];
}

/** Reserves `count` distinct free ports on 127.0.0.1 (all listening at once, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** True when something accepts TCP connections on host:port. */
function tcpOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
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
): Promise<{ clusterId: string; brokerCount: number }> {
  const kafka = new Kafka({
    clientId: "lp-kafka-launcher",
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: Math.min(timeoutMs, 3000),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const description = await admin.describeCluster();
    return { clusterId: description.clusterId, brokerCount: description.brokers.length };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

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

/** Where the class data sharing archive of this JVM and jar set lives (outside the repository). */
export function cdsArchivePath(libDir: string, java: string, env: NodeJS.ProcessEnv = process.env): string {
  const key = createHash("sha256")
    .update(`${realpathSync(java)}\0${statSync(realpathSync(java)).mtimeMs}\0`)
    .update(`${realpathSync(libDir)}\0${statSync(libDir).mtimeMs}`)
    .digest("hex")
    .slice(0, 16);
  return join(cacheDir(env), "kafka", "cds", `${key}.jsa`);
}

const CDS_LOCK_STALE_MS = 10 * 60_000;

/**
 * JVM options for class data sharing: use the archive when it exists; otherwise let exactly one
 * broker (lock file) write it at exit, and publish it atomically once that broker has stopped.
 */
async function cdsOptions(
  archive: string,
): Promise<{ options: string[]; afterExit?: (publish: boolean) => Promise<void> }> {
  const quiet = "-Xlog:cds=off,cds+dynamic=off";
  if (existsSync(archive)) return { options: [`-XX:SharedArchiveFile=${archive}`, quiet] };
  const lock = `${archive}.lock`;
  await mkdir(dirname(archive), { recursive: true });
  try {
    const info = await stat(lock);
    if (Date.now() - info.mtimeMs < CDS_LOCK_STALE_MS) return { options: [] };
    await rm(lock, { force: true });
  } catch {
    // no lock
  }
  try {
    await (await open(lock, "wx")).close();
  } catch {
    return { options: [] };
  }
  // Archives a JVM wrote after its launcher was killed were never published: drop them.
  const cdsDir = dirname(archive);
  for (const file of await readdir(cdsDir)) {
    if (file.startsWith(`${basename(archive)}.`) && file.endsWith(".tmp")) {
      await rm(join(cdsDir, file), { force: true });
    }
  }
  const partial = `${archive}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  return {
    options: [`-XX:ArchiveClassesAtExit=${partial}`, quiet],
    afterExit: async (publish) => {
      try {
        if (publish && (await stat(partial)).size > 0) await rename(partial, archive);
      } catch {
        // the JVM wrote no archive (killed, or CDS unsupported): the next start tries again
      } finally {
        await rm(partial, { force: true });
        await rm(lock, { force: true });
      }
    },
  };
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

const DATA_DIR_PREFIX = "lp-kafka-";
const OWNER_FILE = "launcher.pid";

/** True when some process has `needle` in its command line (Linux /proc; false elsewhere). */
function anyProcessMentions(needle: string): boolean {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return false;
  }
  return entries.some((entry) => {
    if (!/^\d+$/.test(entry)) return false;
    try {
      return readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(needle);
    } catch {
      return false;
    }
  });
}

/**
 * Deletes data dirs left behind by launchers that were killed (SIGKILL leaves no chance to clean up;
 * the guard still ends their brokers): dirs under `baseDir` whose launcher pid is dead and that no
 * process uses. Best effort; returns the dirs deleted.
 */
export async function sweepStaleDataDirs(baseDir: string = tmpdir()): Promise<string[]> {
  const deleted: string[] = [];
  let entries: string[];
  try {
    entries = (await readdir(baseDir)).filter((entry) => entry.startsWith(DATA_DIR_PREFIX));
  } catch {
    return deleted;
  }
  for (const entry of entries) {
    const dir = join(baseDir, entry);
    try {
      const owner = Number((await readFile(join(dir, OWNER_FILE), "utf8")).trim());
      if (!Number.isInteger(owner) || owner <= 0 || pidAlive(owner) || anyProcessMentions(dir)) continue;
      await rm(dir, { recursive: true, force: true });
      deleted.push(dir);
    } catch {
      // not ours (no owner file), or in use
    }
  }
  return deleted;
}

const ADDRESS_IN_USE = /Address already in use|BindException/;

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
    await writeFile(
      propertiesFile,
      formatProperties({
        ...brokerProperties({ brokerPort, controllerPort, logDirs: join(dataDir, "kraft") }),
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
          const description = await describeCluster(brokers);
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
      { cluster: plan.name, brokers, dataDir, ms: Date.now() - started },
      "kafka cluster ready",
    );
    return {
      cluster: { name: plan.name, brokers, dataDir, clusterId, pid: managed.pid, logFile },
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
 * answers `describeCluster` and returns a {@link KafkaSet} whose `stop()` does nothing.
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
  return { clusters, pids: [], stop: async () => undefined };
}
