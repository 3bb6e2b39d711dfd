/** Result document of a benchmark run: summaries, ratios against the targets, and its markdown (pure). */
import type { LicensingRun } from "../licensing/chain.js";
import type { ReplicationRun } from "../replication/measure.js";
import type { ScaleRun } from "../replication/scale.js";
import type { MachineInfo, Versions } from "./machine.js";
import { ratio, summarize, type Summary } from "./stats.js";

export type Status = "ok" | "failed" | "not-integrated";

export interface ReplicatorResult {
  id: string;
  label: string;
  settings: Record<string, string | number | boolean>;
  status: Status;
  reason?: string;
  runs: ReplicationRun[];
  summary: Record<ReplicationMetric, Summary | null>;
}

export const REPLICATION_METRICS = [
  "drainRecordsPerSec",
  "drainMBPerSec",
  "steadyRecordsPerSec",
  "startupSeconds",
  "latencyP50Ms",
  "latencyP99Ms",
  "discoveryMs",
  "cpuSecondsDrain",
  "cpuSecondsTotal",
  "peakRssMiB",
  "drainDuplicates",
] as const;
export type ReplicationMetric = (typeof REPLICATION_METRICS)[number];

export interface LicensingResult {
  id: string;
  label: string;
  status: Status;
  reason?: string;
  runs: LicensingRun[];
  summary: { licensesPerSec: Summary | null; p50Ms: Summary | null; p99Ms: Summary | null };
}

export interface TargetCheck {
  area: "replication" | "licensing";
  name: string;
  /** What is compared, e.g. `project-alo records/s ÷ mm2-default records/s`. */
  comparison: string;
  target: string;
  /** Median measured value or ratio; null when not measured. */
  value: number | null;
  met: boolean | null;
  note?: string;
}

export interface RatioLine {
  name: string;
  value: number | null;
}

/** One scale run of one replicator (bench/replication/scale.ts), with the replicator it measured. */
export type ScaleRow = ScaleRun & { replicator: string; label: string };

export interface BenchResult {
  schema: 1;
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: MachineInfo;
  versions: Versions;
  parameters: Record<string, unknown>;
  replication?: { loader: string; replicators: ReplicatorResult[] };
  /** The scale rows: per replicator and topic count, one run each. */
  scale?: {
    records: number;
    valueBytes: number;
    /** Where the brokers kept their data (a tmpfs such as /dev/shm has no disk fsyncs). */
    kafkaDir?: string;
    runs: ScaleRow[];
  };
  licensing?: { methods: LicensingResult[] };
  ratios: RatioLine[];
  targets: TargetCheck[];
  notes: string[];
}

export function summarizeReplicator(
  base: Omit<ReplicatorResult, "summary" | "status"> & { status?: Status },
): ReplicatorResult {
  const ok = base.runs.filter((r) => !r.error);
  const summary = Object.fromEntries(
    REPLICATION_METRICS.map((metric) => [metric, summarize(ok.map((r) => r[metric]))]),
  ) as Record<ReplicationMetric, Summary | null>;
  const status: Status = base.status ?? (ok.length > 0 ? "ok" : "failed");
  return { ...base, status, summary };
}

export function summarizeLicensing(
  base: Omit<LicensingResult, "summary" | "status"> & { status?: Status },
): LicensingResult {
  const ok = base.runs.filter((r) => !r.error);
  return {
    ...base,
    status: base.status ?? (ok.length > 0 ? "ok" : "failed"),
    summary: {
      licensesPerSec: summarize(ok.map((r) => r.licensesPerSec)),
      p50Ms: summarize(ok.map((r) => r.p50Ms)),
      p99Ms: summarize(ok.map((r) => r.p99Ms)),
    },
  };
}

const med = (s: Summary | null | undefined): number | null => s?.median ?? null;

/** Ratios and target checks of the issue (replicator vs MirrorMaker 2; REST vs naive and absolute). */
export function evaluate(
  replicators: readonly ReplicatorResult[] | undefined,
  methods: readonly LicensingResult[] | undefined,
): { ratios: RatioLine[]; targets: TargetCheck[] } {
  const ratios: RatioLine[] = [];
  const targets: TargetCheck[] = [];
  if (replicators) {
    const byId = new Map(replicators.map((r) => [r.id, r]));
    const rate = (id: string): number | null => med(byId.get(id)?.summary.drainRecordsPerSec);
    const p99 = (id: string): number | null => med(byId.get(id)?.summary.latencyP99Ms);
    const steady = (id: string): number | null => med(byId.get(id)?.summary.steadyRecordsPerSec);
    ratios.push({
      name: "mm2-tuned ÷ mm2-default, records/s",
      value: ratio(rate("mm2-tuned"), rate("mm2-default")),
    });
    for (const project of ["project-alo", "project-eos"]) {
      const result = byId.get(project);
      if (!result) continue;
      const why =
        result.status === "ok"
          ? undefined
          : `${project} ${result.status}${result.reason ? `: ${result.reason}` : ""}`;
      const vsDefault = ratio(rate(project), rate("mm2-default"));
      const vsTuned = ratio(rate(project), rate("mm2-tuned"));
      ratios.push({ name: `${project} ÷ mm2-default, records/s`, value: vsDefault });
      ratios.push({ name: `${project} ÷ mm2-tuned, records/s`, value: vsTuned });
      ratios.push({
        name: `${project} ÷ mm2-default, steady records/s (start-up excluded)`,
        value: ratio(steady(project), steady("mm2-default")),
      });
      ratios.push({
        name: `${project} ÷ mm2-tuned, steady records/s (start-up excluded)`,
        value: ratio(steady(project), steady("mm2-tuned")),
      });
      targets.push({
        area: "replication",
        name: `${project}: throughput vs MirrorMaker 2 defaults`,
        comparison: `${project} ÷ mm2-default (drain records/s)`,
        target: "≥ 2×",
        value: vsDefault,
        met: vsDefault === null ? null : vsDefault >= 2,
        note: why,
      });
      targets.push({
        area: "replication",
        name: `${project}: throughput vs MirrorMaker 2 tuned`,
        comparison: `${project} ÷ mm2-tuned (drain records/s)`,
        target: "≥ 1×",
        value: vsTuned,
        met: vsTuned === null ? null : vsTuned >= 1,
        note: why,
      });
      const discovery = med(result.summary.discoveryMs);
      const timedOut = result.runs.some((r) => r.discoveryTimedOut);
      targets.push({
        area: "replication",
        name: `${project}: discovery of a new topic`,
        comparison: "topic created → first record in the destination (ms)",
        target: "≤ 2,000 ms",
        value: discovery,
        met: timedOut ? false : discovery === null ? null : discovery <= 2000,
        note: timedOut ? "at least one run timed out" : why,
      });
      const mm2P99 = [p99("mm2-default"), p99("mm2-tuned")].filter((v): v is number => v !== null);
      const best = mm2P99.length > 0 ? Math.min(...mm2P99) : null;
      const vsP99 = ratio(p99(project), best);
      ratios.push({ name: `${project} ÷ best MirrorMaker 2, p99 latency`, value: vsP99 });
      targets.push({
        area: "replication",
        name: `${project}: p99 end-to-end latency below MirrorMaker 2's`,
        comparison: `${project} p99 ÷ lowest MirrorMaker 2 p99`,
        target: "< 1×",
        value: vsP99,
        met: vsP99 === null ? null : vsP99 < 1,
        note: why,
      });
    }
  }
  if (methods) {
    const byId = new Map(methods.map((m) => [m.id, m]));
    const rate = (id: string): number | null => med(byId.get(id)?.summary.licensesPerSec);
    ratios.push({ name: "raw pipelined ÷ naive, licenses/s", value: ratio(rate("raw"), rate("naive")) });
    ratios.push({ name: "batch pipelined ÷ naive, licenses/s", value: ratio(rate("batch"), rate("naive")) });
    // the single endpoint keeps the row names of earlier results; the bulk endpoint has its own rows
    for (const [id, name] of [
      ["rest", "REST"],
      ["rest-bulk", "REST bulk"],
    ] as const) {
      const rest = byId.get(id);
      if (!rest) continue;
      const why =
        rest.status === "ok" ? undefined : `${id} ${rest.status}${rest.reason ? `: ${rest.reason}` : ""}`;
      const vsNaive = ratio(rate(id), rate("naive"));
      ratios.push({ name: `${name} ÷ naive, licenses/s`, value: vsNaive });
      ratios.push({ name: `${name} ÷ raw pipelined, licenses/s`, value: ratio(rate(id), rate("raw")) });
      ratios.push({ name: `${name} ÷ batch pipelined, licenses/s`, value: ratio(rate(id), rate("batch")) });
      const endpoint = id === "rest" ? "REST" : "REST bulk endpoint";
      targets.push({
        area: "licensing",
        name: `${endpoint} vs naive client`,
        comparison: `${name} ÷ naive (licenses/s confirmed)`,
        target: "≥ 50×",
        value: vsNaive,
        met: vsNaive === null ? null : vsNaive >= 50,
        note: why,
      });
      const absolute = rate(id);
      targets.push({
        area: "licensing",
        name: `${endpoint} licenses/s confirmed across the chains`,
        comparison: "licenses/s",
        target: "≥ 2,000/s",
        value: absolute,
        met: absolute === null ? null : absolute >= 2000,
        note: why,
      });
    }
  }
  return { ratios, targets };
}

// ------------------------------------------------------------------ markdown

export function fmt(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** `median (±spread %)`, or the single value for one repetition. */
export function cell(summary: Summary | null | undefined, digits = 0): string {
  if (!summary) return "–";
  if (summary.values.length < 2) return fmt(summary.median, digits);
  return `${fmt(summary.median, digits)} (±${fmt(summary.spreadPct / 2, 0)} %)`;
}

function table(header: string[], rows: string[][], align?: ("l" | "r")[]): string {
  const sep = header.map((_, i) => ((align?.[i] ?? "r") === "l" ? "---" : "--:"));
  return [header, sep, ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

export function renderMarkdown(result: BenchResult): string {
  const out: string[] = [];
  const m = result.machine;
  const v = result.versions;
  out.push(`# Benchmark results, ${result.startedAt.slice(0, 16).replace("T", " ")} UTC`);
  out.push("");
  out.push(`- Command: \`${result.command}\``);
  out.push(
    `- Machine: ${m.cpuModel}, ${m.cores} cores, ${fmt(m.memoryGiB, 1)} GiB, ${m.os}; load average at start ${fmt(m.loadAverage1m, 2)}`,
  );
  out.push(
    `- Versions: Node ${v.node}, Kafka ${v.kafka} (${v.java}), kafkajs ${v.kafkajs}, Hardhat ${v.hardhat}, ethers ${v.ethers}`,
  );
  const p = result.parameters;
  out.push(
    `- Repetitions: ${String(p.repeat)}; cells show the median and (± half the range) in percent of it.`,
  );
  for (const note of result.notes) out.push(`- ${note}`);
  if (result.replication) {
    out.push("");
    out.push("## Replication (dc1 → dc2)");
    out.push("");
    out.push(
      `Data set: ${fmt(Number(p.records))} records × ${fmt(Number(p.valueBytes))} B in ${String(p.partitions)} partitions, ` +
        `loaded with ${result.replication.loader}. Latency phase: ${String(p.latencyRate)} records/s for ${String(p.latencySeconds)} s, after ${String(p.latencyWarmup ?? 0)} s at the same rate not measured (warm-up). ` +
        `Drain = replicator start → destination end offsets sum to the record count (start-up included); ` +
        `steady = first record in the destination → all. Duplicates = records a read_committed consumer reads from the drain topic's destination at the end of the run, beyond the data set, per run.`,
    );
    out.push("");
    const rows = result.replication.replicators.map((r) => {
      const s = r.summary;
      if (r.status !== "ok") {
        // The label, the status in the first figure column, and the 10 other columns empty.
        return [r.label, `${r.status}${r.reason ? `: ${r.reason}` : ""}`, ...Array<string>(10).fill("")];
      }
      return [
        r.label,
        cell(s.drainRecordsPerSec),
        cell(s.drainMBPerSec, 1),
        cell(s.steadyRecordsPerSec),
        cell(s.startupSeconds, 1),
        cell(s.latencyP50Ms),
        cell(s.latencyP99Ms),
        r.runs.some((x) => x.discoveryTimedOut) && !s.discoveryMs
          ? `> ${String(p.discoveryTimeout)} s`
          : cell(s.discoveryMs) + (r.runs.some((x) => x.discoveryTimedOut) ? " (some > timeout)" : ""),
        cell(s.cpuSecondsDrain, 1),
        cell(s.cpuSecondsTotal, 1),
        cell(s.peakRssMiB),
        // Per run, not a median: one run with duplicates is worth seeing.
        s.drainDuplicates ? s.drainDuplicates.values.map((v) => fmt(v)).join(" / ") : "–",
      ];
    });
    out.push(
      table(
        [
          "replicator",
          "drain records/s",
          "drain MB/s",
          "steady records/s",
          "start-up s",
          "p50 ms",
          "p99 ms",
          "discovery ms",
          "CPU s (drain)",
          "CPU s (run)",
          "peak RSS MiB",
          "duplicates (drain)",
        ],
        rows,
        ["l"],
      ),
    );
    const tuned = result.replication.replicators.find((r) => r.id === "mm2-tuned");
    if (tuned) {
      out.push("");
      out.push(
        `MirrorMaker 2 "defaults" = only the replication factors of 1 the single-node clusters need; "tuned" adds: ` +
          Object.entries(tuned.settings)
            .map(([k, val]) => `\`${k}=${String(val)}\``)
            .join(", ") +
          ".",
      );
    }
  }
  if (result.scale && result.scale.runs.length > 0) {
    const { records, valueBytes, kafkaDir } = result.scale;
    out.push("");
    out.push(
      `### Scale: N topics × 1 partition × ${fmt(records)} records of ${fmt(valueBytes)} B (dc1 → dc2)`,
    );
    out.push("");
    out.push(
      "Topics created and loaded before the replicator starts; times from its start. Connections: the peak of " +
        "the replicator process's established TCP connections to the two brokers. One run each." +
        (kafkaDir ? ` Broker data in \`${kafkaDir}\`.` : ""),
    );
    out.push("");
    const rows = result.scale.runs.map((r) => [
      r.label,
      fmt(r.topics),
      r.error
        ? `failed: ${r.error.split("\n")[0]}`
        : r.completeSeconds === null
          ? `> timeout (${fmt(r.topicsComplete)} complete)`
          : fmt(r.completeSeconds, 1),
      r.firstRecordSeconds === null ? "–" : fmt(r.firstRecordSeconds, 1),
      r.peakRssMiB === null ? "–" : fmt(r.peakRssMiB),
      r.cpuSeconds === null ? "–" : fmt(r.cpuSeconds, 1),
      r.peakConnections === null ? "–" : fmt(r.peakConnections),
    ]);
    out.push(
      table(
        [
          "replicator",
          "topics",
          "all in destination s",
          "first record s",
          "peak RSS MiB",
          "CPU s",
          "broker connections",
        ],
        rows,
        ["l"],
      ),
    );
  }
  if (result.licensing) {
    out.push("");
    out.push(`## Licensing (${String(p.chains)} local Hardhat chains, automine)`);
    out.push("");
    const rows = result.licensing.methods.map((mth) => {
      if (mth.status !== "ok")
        return [mth.label, `${mth.status}${mth.reason ? `: ${mth.reason}` : ""}`, "", "", ""];
      const n = mth.runs[0]?.licenses;
      return [
        mth.label,
        cell(mth.summary.licensesPerSec, 1),
        cell(mth.summary.p50Ms),
        cell(mth.summary.p99Ms),
        fmt(n),
      ];
    });
    out.push(table(["method", "licenses/s confirmed", "p50 ms", "p99 ms", "licenses per run"], rows, ["l"]));
  }
  if (result.ratios.length > 0) {
    out.push("");
    out.push("## Ratios");
    out.push("");
    out.push(
      table(
        ["ratio", "value"],
        result.ratios.map((r) => [r.name, r.value === null ? "–" : `${fmt(r.value, 2)}×`]),
        ["l"],
      ),
    );
  }
  if (result.targets.length > 0) {
    out.push("");
    out.push("## Targets");
    out.push("");
    out.push(
      table(
        ["target", "measured", "goal", "met"],
        result.targets.map((t) => [
          `${t.name} (${t.comparison})`,
          t.value === null
            ? "not measured"
            : t.comparison.includes("÷")
              ? `${fmt(t.value, 2)}×`
              : fmt(t.value, 0),
          t.target,
          (t.met === null ? "–" : t.met ? "yes" : "**no**") + (t.note ? ` (${t.note})` : ""),
        ]),
        ["l"],
      ),
    );
  }
  out.push("");
  return out.join("\n");
}
