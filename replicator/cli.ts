/**
 * CLI: `replicator --config <file>` (YAML or JSON). Runs until SIGTERM/SIGINT, then drains and commits.
 * The configuration file is watched: a valid change is applied without a restart, an invalid one is
 * logged and ignored.
 */
import { unwatchFile, watchFile } from "node:fs";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { installKafkajsPatches, logPatchReport } from "../kafka/patches/index.js";
import { startAdminServer } from "./admin.js";
import { datacenterSecurity, loadConfigFile, resolveWorkers, type ReplicatorConfig } from "./config.js";
import { Replicator } from "./engine.js";
import { ConfigError } from "./errors.js";
import { createLogger, errorFields, errorText } from "../common/log.js";
import { createMetrics } from "./metrics.js";
import { ReplicatorPool } from "./pool.js";

const HELP = `Usage: replicator --config <file> [--log-level <level>]

Discovers application topics in the configured Kafka datacenters and replicates them
according to the configuration's replication rules (models full, groups, routing, merge,
active-active; naming identity or prefixed). See docs/replicator.md.

Options:
  -c, --config <file>      configuration file (YAML or JSON), required
  -l, --log-level <level>  pino level: trace, debug, info (default), warn, error
  -h, --help               show this help

Engines: replicator.workers in the configuration ("auto" by default: one per CPU core, at most
4) replication engines run in worker threads and share every pipeline's partitions through its
consumer group (exactly-once: engine k of n owns the partitions p with p mod n = k). Changes of
replicator.workers and replicator.delivery take effect after a restart.

Admin endpoints (replicator.admin in the configuration, default 127.0.0.1 and a free port):
  GET /healthz   200 when every datacenter answers, 503 otherwise
  GET /status    discovered applications, pipelines, per-partition offsets and lag (JSON)
  GET /metrics   Prometheus metrics
`;

/** The config file, with every datacenter's secret references resolvable now (ConfigError otherwise). */
function loadChecked(file: string): ReplicatorConfig {
  const config = loadConfigFile(file);
  config.datacenters.forEach((_, i) => datacenterSecurity(config, i));
  return config;
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        config: { type: "string", short: "c" },
        "log-level": { type: "string", short: "l", default: "info" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    });
  } catch (err) {
    process.stderr.write(`${errorText(err)}\n\n${HELP}`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const file = args.values.config;
  if (file === undefined) {
    process.stderr.write(`missing --config <file>\n\n${HELP}`);
    return 2;
  }
  const logger = createLogger({ level: args.values["log-level"] ?? "info", base: { pid: process.pid } });
  let config;
  try {
    config = loadChecked(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      for (const issue of err.issues) process.stderr.write(`  ${issue}\n`);
      return 2;
    }
    throw err;
  }

  logPatchReport(installKafkajsPatches(), logger);
  // One engine on this thread, or several in worker threads (replicator.workers; ./pool.ts).
  const logLevel = args.values["log-level"] ?? "info";
  const workers = resolveWorkers(config, availableParallelism());
  const replicator =
    workers > 1
      ? new ReplicatorPool(config, { logger, logLevel, workers })
      : new Replicator(config, { logger, metrics: createMetrics({ defaultMetrics: true }) });
  logger.info({ workers }, "replication engines");
  // handlers before start: a signal during start-up stops the replicator once it has started
  const signalled = new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, "shutting down");
      resolve();
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
  const admin = await startAdminServer(replicator, { ...config.replicator.admin, logger });
  logger.info({ url: admin.url }, "admin listening");
  await replicator.start();
  logger.info("replicator running");

  watchFile(file, { interval: 1000 }, () => {
    try {
      replicator.updateConfig(loadChecked(file));
    } catch (err) {
      logger.error(
        { err: errorFields(err), ...(err instanceof ConfigError ? { issues: err.issues } : {}) },
        "configuration change rejected",
      );
    }
  });

  await signalled;
  unwatchFile(file);
  await replicator.stop();
  await admin.close();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `replicator failed: ${err instanceof Error && err.stack ? err.stack : errorText(err)}\n`,
    );
    process.exit(1);
  },
);
