/**
 * `npm run bench`: the project's replicator against MirrorMaker 2, and license issue through the REST
 * service against a naive client and the raw chain limit. Starts its own local Kafka clusters and
 * hardhat chains (never both at once), repeats every measurement, and writes `latest.json`,
 * `latest.md` and timestamped copies to the results directory. See docs/bench.md and `--help`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { errorText } from "../common/log.js";
import { installKafkajsPatches } from "../kafka/patches/index.js";
import { kafkaLibDir, startKafkaClusters, type KafkaSet } from "../launchers/kafka.js";
import { runNaive, runPipelined, type LicensingRun } from "./licensing/chain.js";
import { restUnavailable, runRest } from "./licensing/rest.js";
import { startBenchChains, type BenchChains } from "./licensing/setup.js";
import { machineInfo, versions } from "./lib/machine.js";
import { helpText, OptionsError, parseOptions, type BenchOptions } from "./lib/options.js";
import {
  evaluate,
  renderMarkdown,
  summarizeLicensing,
  summarizeReplicator,
  type BenchResult,
  type LicensingResult,
  type ReplicatorResult,
  type ScaleRow,
} from "./lib/report.js";
import { runReplication, type ReplicationParams, type ReplicationRun } from "./replication/measure.js";
import { allReplicators } from "./replication/replicators.js";
import { runScale } from "./replication/scale.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CHAIN_IDS = [31337, 31338, 31339, 31340, 31341, 31342, 31343, 31344];

const progress = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** The replicators `--replicators` names, configured by `--mm2-tasks` and `--project-workers`. */
function selectedReplicators(options: BenchOptions): ReturnType<typeof allReplicators> {
  return allReplicators({
    mm2Tasks: options.mm2Tasks,
    projectWorkers: options.projectWorkers === "auto" ? "auto" : Number(options.projectWorkers),
  }).filter((r) => (options.replicators as string[]).includes(r.id));
}

async function replication(options: BenchOptions, notes: string[]): Promise<ReplicatorResult[]> {
  const candidates = selectedReplicators(options);
  const params: ReplicationParams = {
    records: options.records,
    partitions: options.partitions,
    valueBytes: options.valueBytes,
    latencyRate: options.latencyRate,
    latencySeconds: options.latencySeconds,
    latencyWarmupSeconds: options.latencyWarmup,
    drainTimeoutSeconds: options.drainTimeout,
    discoveryTimeoutSeconds: options.discoveryTimeout,
  };
  const runs = new Map<string, ReplicationRun[]>(candidates.map((r) => [r.id, []]));
  const runnable = candidates.filter((r) => r.unavailable() === null);
  const kafkaLib = kafkaLibDir();
  progress("replication: starting two local Kafka clusters (dc1, dc2)");
  const kafka: KafkaSet = await startKafkaClusters({ names: ["dc1", "dc2"], heap: "512m" });
  try {
    const [source, destination] = kafka.clusters;
    if (!source || !destination) throw new Error("expected two clusters");
    // Repetitions are interleaved (A B C, A B C, ...) so slow phases of a shared machine hit all alike.
    for (let rep = 1; rep <= options.repeat; rep++) {
      for (const replicator of runnable) {
        progress(`replication ${rep}/${options.repeat}: ${replicator.label}`);
        const result = await runReplication(replicator, params, { source, destination, kafkaLib, progress });
        runs.get(replicator.id)?.push(result);
      }
    }
  } finally {
    progress("replication: stopping Kafka");
    await kafka.stop();
  }
  notes.push("Replication runs are interleaved across replicators; every run uses fresh topics.");
  return candidates.map((r) => {
    const reason = r.unavailable();
    const list = runs.get(r.id) ?? [];
    const failed = list.filter((x) => x.error).map((x) => x.error as string);
    return summarizeReplicator({
      id: r.id,
      label: r.label,
      settings: r.settings,
      runs: list,
      ...(reason
        ? { status: "not-integrated" as const, reason }
        : failed.length > 0
          ? { reason: `${failed.length} of ${list.length} runs failed: ${failed[0]?.split("\n")[0]}` }
          : {}),
    });
  });
}

/** The scale rows: per topic count, every replicator on fresh topics (interleaved), one run each. */
async function scale(options: BenchOptions): Promise<NonNullable<BenchResult["scale"]>> {
  const candidates = selectedReplicators(options).filter((r) => r.unavailable() === null);
  const runs: ScaleRow[] = [];
  const kafkaLib = kafkaLibDir();
  const kafkaDir = options.scaleKafkaDir === "" ? tmpdir() : options.scaleKafkaDir;
  progress(`scale: starting two local Kafka clusters (dc1, dc2), data in ${kafkaDir}`);
  const kafka: KafkaSet = await startKafkaClusters({ names: ["dc1", "dc2"], heap: "1g", baseDir: kafkaDir });
  try {
    const [source, destination] = kafka.clusters;
    if (!source || !destination) throw new Error("expected two clusters");
    for (const topics of options.scaleTopics) {
      for (const replicator of candidates) {
        progress(`scale: ${replicator.label}, ${topics} topics`);
        const run = await runScale(
          replicator,
          {
            topics,
            records: options.scaleRecords,
            valueBytes: options.valueBytes,
            timeoutSeconds: options.scaleTimeout,
          },
          { source, destination, kafkaLib, progress },
        );
        runs.push({ replicator: replicator.id, label: replicator.label, ...run });
      }
    }
  } finally {
    progress("scale: stopping Kafka");
    await kafka.stop();
  }
  return { records: options.scaleRecords, valueBytes: options.valueBytes, kafkaDir, runs };
}

const METHOD_LABELS: Record<string, string> = {
  naive: "(a) naive: ethers `issue` + `wait()` per license, sequential",
  raw: "(b) raw chain limit: pre-signed `issue` txs pipelined",
  batch: "(c) pre-signed `issueBatch` txs pipelined",
  rest: "REST service (`server/`), fixed concurrency",
  "rest-bulk": "REST service, bulk endpoint (`POST /v1/licenses/batch`), fixed concurrency",
};

async function licensing(options: BenchOptions): Promise<LicensingResult[]> {
  const methods = options.methods as string[];
  const runs = new Map<string, LicensingRun[]>(methods.map((m) => [m, []]));
  const restReason = methods.some((m) => m.startsWith("rest")) ? restUnavailable() : null;
  progress(`licensing: starting ${options.chains} local chains and deploying LicenseToken`);
  const bench: BenchChains = await startBenchChains(CHAIN_IDS.slice(0, options.chains));
  try {
    for (let rep = 1; rep <= options.repeat; rep++) {
      for (const method of methods) {
        if (method.startsWith("rest") && restReason) continue;
        progress(`licensing ${rep}/${options.repeat}: ${METHOD_LABELS[method]}`);
        try {
          const run =
            method === "naive"
              ? await runNaive(bench, options.naiveLicenses, progress)
              : method === "raw"
                ? await runPipelined(
                    bench,
                    { licenses: options.rawLicenses, perTx: 1, rpcBatch: options.rpcBatch },
                    progress,
                  )
                : method === "batch"
                  ? await runPipelined(
                      bench,
                      {
                        licenses: options.batchLicenses,
                        perTx: options.batchSize,
                        rpcBatch: Math.max(1, Math.floor(options.rpcBatch / 5)),
                      },
                      progress,
                    )
                  : method === "rest"
                    ? await runRest(
                        bench,
                        {
                          licenses: options.restLicenses,
                          concurrency: options.restConcurrency,
                          batchSize: options.restBatchSize,
                          timeoutSeconds: options.restTimeout,
                        },
                        progress,
                      )
                    : await runRest(
                        bench,
                        {
                          licenses: options.restBulkLicenses,
                          concurrency: options.restBulkConcurrency,
                          bulkSize: options.restBulkSize,
                          batchSize: options.restBatchSize,
                          timeoutSeconds: options.restTimeout,
                        },
                        progress,
                      );
          progress(`    → ${run.licensesPerSec.toFixed(1)} licenses/s`);
          runs.get(method)?.push(run);
        } catch (error) {
          progress(`    FAILED: ${errorText(error).split("\n")[0]}`);
          runs.get(method)?.push({
            licenses: 0,
            seconds: 0,
            licensesPerSec: 0,
            p50Ms: null,
            p99Ms: null,
            onChainIssued: 0,
            transactions: 0,
            error: errorText(error),
          });
        }
      }
    }
  } finally {
    progress("licensing: stopping chains");
    await bench.stop();
  }
  return methods.map((m) => {
    const list = runs.get(m) ?? [];
    const failed = list.filter((x) => x.error);
    return summarizeLicensing({
      id: m,
      label: METHOD_LABELS[m] ?? m,
      runs: list,
      ...(m.startsWith("rest") && restReason
        ? { status: "not-integrated" as const, reason: restReason }
        : failed.length > 0
          ? { reason: `${failed.length} of ${list.length} runs failed: ${failed[0]?.error?.split("\n")[0]}` }
          : {}),
    });
  });
}

export async function main(argv: readonly string[]): Promise<number> {
  let options: BenchOptions | null;
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (error instanceof OptionsError) {
      process.stderr.write(`bench: ${error.message}\n\n${helpText()}`);
      return 2;
    }
    throw error;
  }
  if (!options) {
    process.stdout.write(helpText());
    return 0;
  }
  process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= "1";
  // The load generator and the measuring consumer run patched (no 1 ms timer per idle connection):
  // less CPU taken from every contender alike on the shared cores.
  installKafkajsPatches();
  // kafkajs 2.2.4 schedules a negative setTimeout on Node >= 23 (harmless, see docs/kafka.md): print
  // every other warning as Node would.
  process.removeAllListeners("warning");
  process.on("warning", (warning) => {
    if (warning.name !== "TimeoutNegativeWarning")
      process.stderr.write(`${warning.name}: ${warning.message}\n`);
  });
  const startedAt = new Date();
  const notes: string[] = [];
  const machine = machineInfo();
  progress(
    `bench: ${machine.cpuModel}, ${machine.cores} cores, load ${machine.loadAverage1m}; repeat ${options.repeat}`,
  );
  const result: BenchResult = {
    schema: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: "",
    command: ["npm run bench --", ...argv].join(" "),
    machine,
    versions: versions(),
    parameters: { ...options },
    ratios: [],
    targets: [],
    notes,
  };
  let failures = 0;
  if (options.only === undefined || options.only === "scale") {
    try {
      if (options.scaleTopics.length > 0) result.scale = await scale(options);
    } catch (error) {
      failures++;
      notes.push(`scale aborted: ${errorText(error)}`);
      progress(`scale aborted: ${errorText(error)}`);
    }
  }
  if (options.only === undefined || options.only === "licensing") {
    try {
      result.licensing = { methods: await licensing(options) };
    } catch (error) {
      failures++;
      notes.push(`licensing aborted: ${errorText(error)}`);
      progress(`licensing aborted: ${errorText(error)}`);
    }
  }
  if (options.only === undefined || options.only === "replication") {
    try {
      result.replication = {
        loader: "kafkajs (2,000-record batches, 4 in flight, acks=1, no compression)",
        replicators: await replication(options, notes),
      };
    } catch (error) {
      failures++;
      notes.push(`replication aborted: ${errorText(error)}`);
      progress(`replication aborted: ${errorText(error)}`);
    }
  }
  const { ratios, targets } = evaluate(result.replication?.replicators, result.licensing?.methods);
  result.ratios = ratios;
  result.targets = targets;
  result.finishedAt = new Date().toISOString();
  const outDir = path.resolve(ROOT, options.out);
  mkdirSync(outDir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const markdown = renderMarkdown(result);
  for (const name of ["latest", stamp]) {
    writeFileSync(path.join(outDir, `${name}.json`), json);
    writeFileSync(path.join(outDir, `${name}.md`), markdown);
  }
  progress(`\n${markdown}`);
  progress(
    `bench: results in ${path.relative(process.cwd(), outDir) || "."}/latest.{json,md} and ${stamp}.{json,md}`,
  );
  return failures > 0 ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(
        `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}
