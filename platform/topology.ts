/**
 * The whole platform on one machine, without Docker: three local chains, two Kafka datacenters, the
 * contract deployed to every chain, the licensing service in datacenter dc1 (publishing its license
 * events to dc1's Kafka), one replicator per datacenter (active-active, prefixed naming), and a
 * read-only licensing replica in dc2 that serves lookups from the replicated event stream.
 *
 * The same topology as docker-compose.yml, started through the project's own launchers.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { HDNodeWallet, Wallet } from "ethers";
import { stringify as toYaml } from "yaml";
import { startChains, type ChainSet } from "../launchers/chains.js";
import {
  kafkaSecuritySchema,
  resolveKafkaSecurity,
  type KafkaSecurityInput,
  type ResolvedKafkaSecurity,
} from "../kafka/security.js";
import { clientSecurityConfig, startKafkaClusters, type KafkaSet } from "../launchers/kafka.js";
import { LaunchError } from "../launchers/errors.js";
import { freePort } from "../launchers/ports.js";
import { startManaged, waitUntil, type ManagedProcess } from "../launchers/process.js";
import { deployAll } from "../scripts/deploy.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Hardhat's public development mnemonic: every local node funds its first 20 accounts. */
const DEV_MNEMONIC = "test test test test test test test test test test test junk";
/** Account 1 signs license transactions (account 0 deploys). */
const SIGNER_INDEX = 1;

export const EVENTS_TOPIC = "licensing.events";
export const PRIMARY_DC = "dc1";
export const REPLICA_DC = "dc2";

export interface PlatformOptions {
  /** Working directory for configs, databases, logs and the API key files. */
  workDir: string;
  chainIds?: readonly number[];
  /** Progress lines for a person. */
  log?: (line: string) => void;
  /** `sasl_ssl`: both Kafka datacenters listen on SASL_SSL only; every config and client uses it. */
  security?: "plaintext" | "sasl_ssl";
}

export interface ServiceEndpoint {
  name: string;
  url: string;
  process: ManagedProcess;
}

export interface Platform {
  chains: ChainSet;
  kafka: KafkaSet;
  deploymentsFile: string;
  contracts: Map<number, string>;
  primary: ServiceEndpoint;
  replica: ServiceEndpoint;
  replicators: ServiceEndpoint[];
  /**
   * Files (mode 600) holding the demo's API keys; the keys themselves are never printed. `dashboard`:
   * the read-only `platform:read` key for /dashboard (absent where the topology has none).
   */
  apiKeyFiles: { client: string; admin: string; dashboard?: string };
  /** The keys, for the scenario in this process. */
  apiKeys: { client: string; admin: string; dashboard?: string };
  brokersOf(datacenter: string): string[];
  /** The `security` config of a datacenter's clients (CA file, SCRAM, password file); undefined when plaintext. */
  securityOf(datacenter: string): KafkaSecurityInput | undefined;
  /** The same, resolved for `createKafka`. */
  clientSecurityOf(datacenter: string): ResolvedKafkaSecurity;
  stop(): Promise<void>;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function devWallet(index: number): Wallet {
  const hd = HDNodeWallet.fromPhrase(DEV_MNEMONIC, undefined, `m/44'/60'/0'/0/${index}`);
  return new Wallet(hd.privateKey);
}

async function startService(options: {
  name: string;
  entry: string;
  args: string[];
  port: number;
  env?: NodeJS.ProcessEnv;
  logDir: string;
  healthPath?: string;
}): Promise<ServiceEndpoint> {
  const proc = startManaged({
    name: options.name,
    command: process.execPath,
    args: ["--import", "tsx", "--disable-warning=TimeoutNegativeWarning", options.entry, ...options.args],
    cwd: ROOT,
    env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: "1", ...options.env },
    logFile: path.join(options.logDir, `${options.name}.log`),
    graceSeconds: 10,
  });
  const url = `http://127.0.0.1:${options.port}`;
  await waitUntil(async () => (await fetch(`${url}${options.healthPath ?? "/healthz"}`)).ok, {
    what: `${options.name} at ${url}`,
    timeoutMs: 60_000,
    intervalMs: 250,
    process: proc,
  });
  return { name: options.name, url, process: proc };
}

export async function startPlatform(options: PlatformOptions): Promise<Platform> {
  const log = options.log ?? (() => undefined);
  const workDir = path.resolve(options.workDir);
  const logDir = path.join(workDir, "logs");
  mkdirSync(logDir, { recursive: true });
  const chainIds = options.chainIds ?? [31337, 31338, 31339];

  let chains: ChainSet | undefined;
  let kafka: KafkaSet | undefined;
  const services: ServiceEndpoint[] = [];
  const timed = async (what: string, work: Promise<unknown>): Promise<void> => {
    const started = Date.now();
    await work;
    log(`  stopped ${what} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  };
  const stop = async (): Promise<void> => {
    // Applications first (they drain and commit), then the infrastructure under them.
    await Promise.all(services.map((s) => timed(s.name, s.process.stop())));
    await Promise.all([
      chains ? timed("chains", chains.stop()) : undefined,
      kafka ? timed("Kafka datacenters", kafka.stop()) : undefined,
    ]);
  };

  try {
    log(`starting ${chainIds.length} chains and 2 Kafka datacenters ...`);
    [chains, kafka] = await Promise.all([
      startChains({ chainIds, logDir }),
      startKafkaClusters({
        names: [PRIMARY_DC, REPLICA_DC],
        ...(options.security ? { security: options.security } : {}),
      }),
    ]);
    const kafkaSet = kafka;
    const brokersOf = (dc: string): string[] => {
      const cluster = kafkaSet.clusters.find((c) => c.name === dc);
      if (!cluster) throw new LaunchError("UNKNOWN_DATACENTER", `no datacenter ${dc}`);
      return cluster.brokers;
    };
    const securityOf = (dc: string): KafkaSecurityInput | undefined =>
      clientSecurityConfig(kafkaSet.clusters.find((c) => c.name === dc)?.security);
    /** `{ security }` for a config entry of datacenter `dc`, nothing when plaintext. */
    const withSecurity = (dc: string): { security?: KafkaSecurityInput } => {
      const security = securityOf(dc);
      return security ? { security } : {};
    };
    for (const c of chains.chains) log(`  chain ${c.chainId}  ${c.rpcUrl}`);
    for (const c of kafka.clusters) log(`  kafka ${c.name}    ${c.brokers.join(",")}`);

    // ---- contract on every chain
    const signer = devWallet(SIGNER_INDEX);
    const deploymentsFile = path.join(workDir, "deployments.json");
    log("deploying the license contract to every chain ...");
    const deployed = await deployAll({
      chains: chains.chains.map((c) => ({ name: c.name, rpcUrl: c.rpcUrl })),
      outFile: deploymentsFile,
      issuer: signer.address,
    });
    const contracts = new Map<number, string>();
    for (const result of deployed.results) contracts.set(result.chainId, result.deployment.address);
    for (const [chainId, address] of contracts) log(`  chain ${chainId}: LicenseToken at ${address}`);

    // ---- API keys (hashed in the configs; the keys go to files only this user can read)
    const apiKeys = {
      client: `lpk_${randomBytes(24).toString("hex")}`,
      admin: `lpk_${randomBytes(24).toString("hex")}`,
      dashboard: `lpk_${randomBytes(24).toString("hex")}`,
    };
    const apiKeyFiles = {
      client: path.join(workDir, "client.key"),
      admin: path.join(workDir, "admin.key"),
      dashboard: path.join(workDir, "dashboard.key"),
    };
    writeFileSync(apiKeyFiles.client, `${apiKeys.client}\n`, { mode: 0o600 });
    writeFileSync(apiKeyFiles.admin, `${apiKeys.admin}\n`, { mode: 0o600 });
    writeFileSync(apiKeyFiles.dashboard, `${apiKeys.dashboard}\n`, { mode: 0o600 });

    const chainEntries = chains.chains.map((c, i) => ({
      name: c.name,
      chainId: c.chainId,
      rpcUrl: c.rpcUrl,
      signer: { env: "LICENSE_SIGNER_KEY" },
      weight: [3, 2, 1][i] ?? 1,
    }));
    const common = {
      deploymentsFile,
      chains: chainEntries,
      products: [
        { id: 1, name: "Studio Pro", defaultDurationSeconds: 365 * 24 * 3600 },
        { id: 2, name: "Render Farm", defaultDurationSeconds: 30 * 24 * 3600 },
      ],
      policy: "weighted",
      apiKeys: [
        { id: "demo-client", sha256: sha256(apiKeys.client), scopes: ["licenses:write", "licenses:read"] },
        { id: "demo-admin", sha256: sha256(apiKeys.admin), scopes: ["admin"] },
        { id: "demo-dashboard", sha256: sha256(apiKeys.dashboard), scopes: ["platform:read"] },
      ],
    };

    // ---- replicators: one per datacenter, each pulling into its own datacenter
    const replicatorConfig = (dc: string, adminPort: number): Record<string, unknown> => ({
      replicator: { id: `replicator-${dc}`, datacenter: dc, admin: { port: adminPort } },
      datacenters: kafkaSet.clusters.map((c) => ({
        name: c.name,
        brokers: c.brokers,
        ...withSecurity(c.name),
      })),
      discovery: { intervalMs: 500 },
      naming: "prefixed",
      replication: [{ model: "active-active", topics: [".*"], datacenters: [PRIMARY_DC, REPLICA_DC] }],
    });
    log("starting the replicators (active-active dc1 <-> dc2, prefixed topic names) ...");
    const replicators = await Promise.all(
      [PRIMARY_DC, REPLICA_DC].map(async (dc) => {
        const port = await freePort();
        const file = path.join(workDir, `replicator-${dc}.yaml`);
        writeFileSync(file, toYaml(replicatorConfig(dc, port)));
        return startService({
          name: `replicator-${dc}`,
          entry: "replicator/cli.ts",
          args: ["--config", file],
          port,
          logDir,
        });
      }),
    );
    services.push(...replicators);
    // the dashboard (/dashboard) of both licensing instances reads the replicators' admin APIs
    const dashboard = {
      replicators: [PRIMARY_DC, REPLICA_DC].map((dc, i) => ({ datacenter: dc, url: replicators[i]!.url })),
    };

    // ---- licensing service in dc1 (primary) and its read replica in dc2
    const primaryPort = await freePort();
    const primaryConfig = path.join(workDir, "licensing-dc1.json");
    writeFileSync(
      primaryConfig,
      JSON.stringify(
        {
          ...common,
          dashboard,
          server: { port: primaryPort },
          database: { path: path.join(workDir, "licensing-dc1.sqlite") },
          events: {
            brokers: brokersOf(PRIMARY_DC),
            ...withSecurity(PRIMARY_DC),
            topic: EVENTS_TOPIC,
            datacenter: PRIMARY_DC,
          },
        },
        null,
        2,
      ),
    );
    log("starting the licensing service in dc1 ...");
    const primary = await startService({
      name: "licensing-dc1",
      entry: "server/main.ts",
      args: ["--config", primaryConfig],
      port: primaryPort,
      env: { LICENSE_SIGNER_KEY: signer.privateKey },
      logDir,
      healthPath: "/readyz",
    });
    services.push(primary);

    const replicaPort = await freePort();
    const replicaConfig = path.join(workDir, "licensing-dc2-replica.json");
    writeFileSync(
      replicaConfig,
      JSON.stringify(
        {
          ...common,
          chains: chainEntries.map(({ signer: _signer, ...rest }) => rest),
          mode: "replica",
          dashboard,
          server: { port: replicaPort },
          database: { path: path.join(workDir, "licensing-dc2-replica.sqlite") },
          replica: {
            brokers: brokersOf(REPLICA_DC),
            ...withSecurity(REPLICA_DC),
            topics: [`${PRIMARY_DC}.${EVENTS_TOPIC}`],
            groupId: "licensing-replica-dc2",
          },
        },
        null,
        2,
      ),
    );
    log("starting the read-only licensing replica in dc2 ...");
    const replica = await startService({
      name: "licensing-dc2-replica",
      entry: "server/main.ts",
      args: ["--config", replicaConfig],
      port: replicaPort,
      logDir,
      healthPath: "/readyz",
    });
    services.push(replica);

    return {
      chains,
      kafka,
      deploymentsFile,
      contracts,
      primary,
      replica,
      replicators,
      apiKeyFiles,
      apiKeys,
      brokersOf,
      securityOf,
      clientSecurityOf: (dc) => {
        const security = securityOf(dc);
        return resolveKafkaSecurity(security && kafkaSecuritySchema.parse(security), `datacenter ${dc}`);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
