/** The shapes the Kafka launchers hand out and take (local clusters and external mode alike). */

export interface KafkaCluster {
  /** Datacenter name, e.g. `dc1`. */
  name: string;
  /** Bootstrap servers, `host:port`. */
  brokers: string[];
  /** Data dir of a launched cluster (config, KRaft logs, `logs/server.log`); absent in external mode. */
  dataDir?: string;
  /** KRaft cluster id of a launched cluster. */
  clusterId?: string;
  /** Pid of the managed process (guard) running the broker, updated by `restart`; absent in external mode. */
  pid?: number;
  /** The broker's log4j log file (launched clusters). */
  logFile?: string;
  /** How clients reach a secured cluster (`StartKafkaOptions.security`); absent for PLAINTEXT. */
  security?: KafkaClientSecurity;
}

/** The client side of a secured local cluster: `clientSecurityConfig` (./kafka-secured.ts) turns it into config. */
export interface KafkaClientSecurity {
  protocol: "SASL_SSL";
  /** The CA (PEM) that signed the broker's certificate (SAN 127.0.0.1, localhost). */
  caFile: string;
  /** The mechanism clients use by default; every one of `mechanisms` is enabled on the listener. */
  mechanism: "scram-sha-512";
  mechanisms: ("scram-sha-512" | "scram-sha-256" | "plain")[];
  username: string;
  /** File holding the user's password (mode 600, no trailing newline). */
  passwordFile: string;
}

export interface KafkaSet {
  clusters: KafkaCluster[];
  /** Pids of the managed broker processes (guards) of the latest starts, read when asked (empty in external mode). */
  readonly pids: number[];
  /** SIGKILLs cluster `name`'s broker JVM (no clean shutdown); resolves once it is gone and its ports refuse connections. */
  kill(name: string): Promise<void>;
  /** Starts killed cluster `name` again (same ports, data, cluster id; no format); rejects while it runs. */
  restart(name: string): Promise<void>;
  /** Stops launched brokers (restarted ones too) and deletes their data dirs (unless `keepData`); a no-op in external mode. */
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
  /**
   * `sasl_ssl`: the client listener speaks SASL_SSL only (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN; a CA and
   * a broker certificate generated at start); each cluster's `security` says how to connect.
   */
  security?: "plaintext" | "sasl_ssl";
  /** Explicit client ports, aligned with `names`; default: free ports. */
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
