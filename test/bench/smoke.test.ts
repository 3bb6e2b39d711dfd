/**
 * Smoke test of `npm run bench`: the real command in a tiny configuration (three local chains, two
 * local Kafka clusters, the project's replicator; MirrorMaker 2 is left out because its JVM alone
 * needs 20–45 s to start on the shared test machine). Checks the shape of the result files and that
 * every figure is a positive number.
 */
import { expect } from "chai";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startManaged, type ManagedProcess } from "../../launchers/process.js";
import type { BenchResult } from "../../bench/lib/report.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

describe("npm run bench (smoke, tiny configuration)", function () {
  this.timeout(180_000);
  let outDir: string;
  let bench: ManagedProcess | undefined;
  let result: BenchResult;

  before(async () => {
    outDir = await mkdtemp(path.join(tmpdir(), "lp-bench-smoke-"));
    bench = startManaged({
      name: "bench",
      command: process.execPath,
      args: [
        "--import",
        "tsx",
        path.join(ROOT, "bench/run.ts"),
        "--repeat=1",
        `--out=${outDir}`,
        "--replicators=project-alo",
        "--records=2000",
        "--partitions=4",
        "--latency-rate=100",
        "--latency-seconds=2",
        "--latency-warmup=1",
        "--discovery-timeout=20",
        "--scale-topics=5",
        "--scale-records=3",
        "--naive-licenses=4",
        "--raw-licenses=30",
        "--batch-licenses=200",
        "--batch-size=50",
        "--rest-licenses=30",
        "--rest-concurrency=4",
        "--rest-bulk-licenses=60",
        "--rest-bulk-size=20",
        "--rest-bulk-concurrency=2",
      ],
      cwd: ROOT,
      graceSeconds: 20,
    });
    const exit = await bench.exited;
    if (exit.code !== 0) throw new Error(`bench exited with ${String(exit.code)}:\n${bench.tail(40)}`);
    result = JSON.parse(readFileSync(path.join(outDir, "latest.json"), "utf8")) as BenchResult;
  });

  after(async () => {
    await bench?.stop();
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it("records the machine, the versions and the parameters", () => {
    expect(result.schema).to.equal(1);
    expect(result.machine.cores).to.be.greaterThan(0);
    expect(result.machine.memoryGiB).to.be.greaterThan(0);
    expect(result.machine.cpuModel).to.be.a("string").and.not.equal("");
    expect(result.versions.node).to.equal(process.version);
    expect(result.versions.kafka).to.match(/^\d+\.\d+\.\d+/);
    expect(result.versions.kafkajs).to.match(/^\d+\.\d+\.\d+/);
    expect(result.versions.hardhat).to.match(/^\d+\.\d+\.\d+/);
    expect(result.parameters).to.include({ repeat: 1, records: 2000, naiveLicenses: 4, restLicenses: 30 });
    expect(Date.parse(result.finishedAt)).to.be.at.least(Date.parse(result.startedAt));
  });

  it("measures every licensing method with positive figures and nothing lost on-chain", () => {
    const methods = result.licensing?.methods ?? [];
    expect(methods.map((m) => m.id)).to.deep.equal(["naive", "raw", "batch", "rest", "rest-bulk"]);
    for (const method of methods) {
      expect(method.status, `${method.id}: ${method.reason ?? ""}`).to.equal("ok");
      expect(method.runs).to.have.length(1);
      const run = method.runs[0];
      expect(run?.onChainIssued, method.id).to.equal(run?.licenses);
      expect(method.summary.licensesPerSec?.median, method.id).to.be.greaterThan(0);
    }
    const naive = methods.find((m) => m.id === "naive");
    const rest = methods.find((m) => m.id === "rest");
    expect(naive?.summary.p99Ms?.median).to.be.greaterThan(0);
    expect(rest?.summary.p50Ms?.median).to.be.greaterThan(0);
    expect(rest?.summary.p99Ms?.median).to.be.at.least(rest?.summary.p50Ms?.median ?? Infinity);
  });

  it("measures the replicator: drain, latency, discovery, CPU and memory", () => {
    const [replicator] = result.replication?.replicators ?? [];
    expect(replicator?.id).to.equal("project-alo");
    expect(replicator?.status, replicator?.reason).to.equal("ok");
    const s = replicator!.summary;
    for (const metric of [
      "drainRecordsPerSec",
      "drainMBPerSec",
      "latencyP50Ms",
      "latencyP99Ms",
      "discoveryMs",
      "cpuSecondsTotal",
      "peakRssMiB",
    ] as const) {
      expect(s[metric]?.median, metric).to.be.greaterThan(0);
    }
    expect(replicator!.runs[0]?.latencyRecords).to.equal(200);
    // Measured (null when the run ended before); at-least-once may legitimately copy a few twice.
    expect(replicator!.runs[0]?.drainDuplicates).to.be.a("number");
  });

  it("measures the scale row: every topic complete, with the replicator's broker connections", () => {
    const [row] = result.scale?.runs ?? [];
    expect(row, JSON.stringify(result.scale)).to.include({
      replicator: "project-alo",
      topics: 5,
      topicsComplete: 5,
    });
    expect(row?.error).to.equal(undefined);
    expect(row?.completeSeconds).to.be.greaterThan(0);
    expect(row?.firstRecordSeconds).to.be.greaterThan(0).and.at.most(row!.completeSeconds!);
    expect(row?.peakConnections).to.be.greaterThan(0);
    expect(row?.peakRssMiB).to.be.greaterThan(0);
  });

  it("reports ratios and target checks, and writes the markdown table", () => {
    const restVsNaive = result.ratios.find((r) => r.name === "REST ÷ naive, licenses/s");
    expect(restVsNaive?.value).to.be.greaterThan(0);
    const names = result.targets.map((t) => t.name);
    expect(names).to.include("REST vs naive client");
    expect(names).to.include("REST bulk endpoint vs naive client");
    expect(names).to.include("project-alo: discovery of a new topic");
    for (const target of result.targets.filter((t) => t.area === "licensing")) {
      expect(target.value, target.name).to.be.a("number");
      expect(target.met, target.name).to.be.a("boolean");
    }
    const markdown = readFileSync(path.join(outDir, "latest.md"), "utf8");
    expect(markdown).to.contain("## Replication").and.contain("## Licensing").and.contain("## Targets");
    expect(markdown).to.contain("project replicator, at-least-once");
    const stamped = result.startedAt.replace(/[:.]/g, "-");
    expect(existsSync(path.join(outDir, `${stamped}.json`))).to.equal(true);
    expect(existsSync(path.join(outDir, `${stamped}.md`))).to.equal(true);
  });
});
