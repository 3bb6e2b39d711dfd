/** Command-line options of `npm run bench` (pure: parsing and validation only). */
import { parseArgs } from "node:util";
import { z } from "zod";

export const REPLICATOR_IDS = ["mm2-default", "mm2-tuned", "project-alo", "project-eos"] as const;
export const LICENSING_IDS = ["naive", "raw", "batch", "rest", "rest-bulk"] as const;

/** "a, b,c" → ["a", "b", "c"]. */
const splitList = (s: string): string[] =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);

const int = (min: number) => z.coerce.number().int().min(min);

export const optionsSchema = z.object({
  only: z.enum(["replication", "scale", "licensing"]).optional(),
  repeat: int(1),
  quick: z.boolean(),
  out: z.string().min(1),
  // replication
  records: int(1),
  partitions: int(1),
  valueBytes: int(1),
  latencyRate: int(1),
  latencySeconds: int(1),
  latencyWarmup: z.coerce.number().int().min(0),
  drainTimeout: int(1),
  discoveryTimeout: int(1),
  replicators: z
    .string()
    .transform(splitList)
    .pipe(z.array(z.enum(REPLICATOR_IDS)).min(1)),
  mm2Tasks: int(1),
  projectWorkers: z.string().regex(/^(auto|[1-9]\d*)$/, 'a number of engines or "auto"'),
  // scale
  scaleTopics: z
    .string()
    .regex(/^(none|[1-9]\d*(\s*,\s*[1-9]\d*)*)$/, 'topic counts such as "10,100,1000", or "none"')
    .transform((s) => (s === "none" ? [] : splitList(s).map(Number))),
  scaleRecords: int(1),
  scaleTimeout: int(1),
  scaleKafkaDir: z.string(),
  // licensing
  chains: int(1),
  methods: z
    .string()
    .transform(splitList)
    .pipe(z.array(z.enum(LICENSING_IDS)).min(1)),
  naiveLicenses: int(1),
  rawLicenses: int(1),
  batchLicenses: int(1),
  batchSize: int(1),
  rpcBatch: int(1),
  restLicenses: int(1),
  restConcurrency: int(1),
  restBatchSize: int(1),
  restTimeout: int(1),
  restBulkLicenses: int(1),
  restBulkSize: int(1),
  restBulkConcurrency: int(1),
});
export type BenchOptions = z.infer<typeof optionsSchema>;

export const DEFAULTS = {
  repeat: 3,
  out: "bench/results",
  records: 1_000_000,
  partitions: 8,
  valueBytes: 1024,
  latencyRate: 1000,
  latencySeconds: 20,
  latencyWarmup: 5,
  drainTimeout: 900,
  discoveryTimeout: 60,
  replicators: REPLICATOR_IDS.join(","),
  mm2Tasks: 4,
  projectWorkers: "auto",
  scaleTopics: "10,100,1000",
  scaleRecords: 20,
  scaleTimeout: 300,
  scaleKafkaDir: "",
  chains: 3,
  methods: LICENSING_IDS.join(","),
  naiveLicenses: 100,
  rawLicenses: 3000,
  batchLicenses: 30_000,
  batchSize: 100,
  rpcBatch: 50,
  restLicenses: 3000,
  restConcurrency: 64,
  restBatchSize: 100,
  restTimeout: 300,
  restBulkLicenses: 30_000,
  restBulkSize: 100,
  restBulkConcurrency: 8,
} as const;

/** `--quick`: small sizes for a first look or a smoke test (explicit options still win). */
export const QUICK = {
  records: 20_000,
  scaleTopics: "10,100",
  latencyRate: 200,
  latencySeconds: 5,
  latencyWarmup: 2,
  discoveryTimeout: 20,
  naiveLicenses: 20,
  rawLicenses: 300,
  batchLicenses: 3000,
  restLicenses: 300,
  restConcurrency: 16,
  restBulkLicenses: 3000,
} as const;

/** option name → [flag, help]; the flags are the kebab-case names. */
const HELP_LINES: [string, string][] = [
  ["only", "replication | scale | licensing (default: all three)"],
  ["repeat", "repetitions of every measurement; median and spread are reported"],
  ["quick", "small sizes (see below); explicit options still win"],
  ["out", "results directory (latest.json, latest.md and timestamped copies)"],
  ["records", "replication: records pre-loaded into the source topic"],
  ["partitions", "replication: partitions of the source topic"],
  ["value-bytes", "replication: bytes per record value"],
  ["latency-rate", "replication: steady produce rate for the latency phase (records/s)"],
  ["latency-seconds", "replication: duration of the latency phase (measured records)"],
  ["latency-warmup", "replication: seconds produced at the same rate before the latency phase, not measured"],
  ["drain-timeout", "replication: seconds a drain may take before the run fails"],
  ["discovery-timeout", "replication: seconds to wait for a new topic to be replicated"],
  ["replicators", `replication: comma-separated, of ${REPLICATOR_IDS.join(", ")}`],
  ["mm2-tasks", "replication: tasks.max of tuned MirrorMaker 2"],
  [
    "project-workers",
    "replication: replicator.workers of the project's replicator (engine threads; its default)",
  ],
  ["scale-topics", 'scale: topic counts of the scale rows (1 partition each), or "none"'],
  ["scale-records", "scale: records of --value-bytes per topic"],
  ["scale-timeout", "scale: seconds until every topic must be complete in the destination"],
  [
    "scale-kafka-dir",
    "scale: where the two clusters keep their data (default: the OS temp dir; /dev/shm takes the disk's fsyncs out of topic creation)",
  ],
  ["chains", "licensing: number of local chains"],
  ["methods", `licensing: comma-separated, of ${LICENSING_IDS.join(", ")}`],
  ["naive-licenses", "licensing: licenses of the naive client (call + wait each)"],
  ["raw-licenses", "licensing: pre-signed single `issue` transactions, pipelined"],
  ["batch-licenses", "licensing: licenses sent as pipelined `issueBatch` transactions"],
  ["batch-size", "licensing: licenses per `issueBatch` transaction"],
  ["rpc-batch", "licensing: signed transactions per JSON-RPC batch request"],
  ["rest-licenses", "licensing: licenses requested through the REST service"],
  ["rest-concurrency", "licensing: concurrent REST clients"],
  ["rest-batch-size", "licensing: the service's batching.maxSize"],
  ["rest-timeout", "licensing: seconds until every REST license must be confirmed"],
  ["rest-bulk-licenses", "licensing: licenses requested through the bulk endpoint (POST /v1/licenses/batch)"],
  ["rest-bulk-size", "licensing: licenses per bulk request"],
  ["rest-bulk-concurrency", "licensing: concurrent bulk clients (one request in flight each)"],
];

const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const camel = (flag: string): string => flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

export function helpText(): string {
  const defaults = DEFAULTS as Record<string, unknown>;
  const quick = QUICK as Record<string, unknown>;
  const rows = HELP_LINES.map(([flag, text]) => {
    const key = camel(flag);
    const extra = [
      defaults[key] !== undefined ? `default ${String(defaults[key])}` : "",
      quick[key] !== undefined ? `quick ${String(quick[key])}` : "",
    ]
      .filter(Boolean)
      .join(", ");
    return `  --${flag.padEnd(22)} ${text}${extra ? ` (${extra})` : ""}`;
  });
  return [
    "Benchmarks: the project's replicator against MirrorMaker 2, and license issue through the REST",
    "service against a naive ethers client and pre-signed transactions pipelined to the chains.",
    "Starts its own local Kafka clusters and hardhat chains; writes JSON and markdown to --out.",
    "",
    "Usage: npm run bench -- [options]      (node --import tsx bench/run.ts [options])",
    "",
    ...rows,
    "  -h, --help                 this help",
    "",
  ].join("\n");
}

export class OptionsError extends Error {
  readonly code = "BENCH_OPTIONS_INVALID";
}

/** Parses argv (without node and script); returns null for --help. */
export function parseOptions(argv: readonly string[]): BenchOptions | null {
  const spec: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [flag] of HELP_LINES) spec[flag] = { type: flag === "quick" ? "boolean" : "string" };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: [...argv], options: spec, strict: true, allowPositionals: false })
      .values as Record<string, string | boolean | undefined>;
  } catch (error) {
    throw new OptionsError((error as Error).message);
  }
  if (values.help) return null;
  const quick = values.quick === true;
  const raw: Record<string, unknown> = { ...DEFAULTS, ...(quick ? QUICK : {}), quick };
  for (const [flag] of HELP_LINES) {
    if (flag !== "quick" && values[flag] !== undefined) raw[camel(flag)] = values[flag];
  }
  const parsed = optionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path[0] !== undefined ? `--${kebab(String(issue.path[0]))}` : "options";
    throw new OptionsError(`${field}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}
