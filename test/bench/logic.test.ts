/** Pure logic of the benchmark: statistics, options, /proc parsing, MirrorMaker 2 config, target checks. */
import { expect } from "chai";
import { counterSum } from "../../bench/licensing/rest.js";
import { shares } from "../../bench/licensing/chain.js";
import { DEFAULTS, OptionsError, parseOptions, QUICK } from "../../bench/lib/options.js";
import { parseConfig } from "../../replicator/config.js";
import { parseCpuSeconds, parseStatusMiB } from "../../bench/lib/proc.js";
import {
  cell,
  evaluate,
  summarizeLicensing,
  summarizeReplicator,
  type LicensingResult,
  type ReplicatorResult,
} from "../../bench/lib/report.js";
import { median, percentile, ratio, summarize } from "../../bench/lib/stats.js";
import type { LicensingRun } from "../../bench/licensing/chain.js";
import type { ReplicationRun } from "../../bench/replication/measure.js";
import { mm2Properties, mm2TunedSettings, projectConfig } from "../../bench/replication/replicators.js";

describe("bench: statistics", () => {
  it("computes nearest-rank percentiles and medians", () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    expect(percentile(values, 50)).to.equal(50);
    expect(percentile(values, 99)).to.equal(99);
    expect(percentile(values, 100)).to.equal(100);
    expect(percentile([7], 99)).to.equal(7);
    expect(Number.isNaN(percentile([], 50))).to.equal(true);
    expect(() => percentile([1], 101)).to.throw(RangeError);
    expect(median([3, 1, 2])).to.equal(2);
    expect(median([4, 1, 3, 2])).to.equal(2.5);
  });

  it("summarises repetitions as median and spread, ignoring missing values", () => {
    expect(summarize([10, null, 30, 20])).to.deep.equal({
      median: 20,
      min: 10,
      max: 30,
      spreadPct: 100,
      values: [10, 30, 20],
    });
    expect(summarize([5])?.spreadPct).to.equal(0);
    expect(summarize([null, undefined])).to.equal(null);
    expect(ratio(6, 3)).to.equal(2);
    expect(ratio(6, 0)).to.equal(null);
    expect(ratio(null, 3)).to.equal(null);
  });

  it("formats a cell as median and half the range", () => {
    expect(cell(summarize([90, 100, 110]))).to.equal("100 (±10 %)");
    expect(cell(summarize([1.25]), 1)).to.equal("1.3");
    expect(cell(null)).to.equal("–");
  });

  it("splits licenses over chains evenly", () => {
    expect(shares(10, 3)).to.deep.equal([4, 3, 3]);
    expect(shares(2, 3)).to.deep.equal([1, 1, 0]);
  });
});

describe("bench: options", () => {
  it("uses the defaults of the issue without options", () => {
    const options = parseOptions([]);
    expect(options).to.include({
      repeat: 3,
      records: 1_000_000,
      partitions: 8,
      valueBytes: 1024,
      quick: false,
    });
    expect(options?.replicators).to.deep.equal(["mm2-default", "mm2-tuned", "project-alo", "project-eos"]);
    expect(options?.only).to.equal(undefined);
    expect(options?.scaleTopics).to.deep.equal([10, 100, 1000]);
    expect(options?.scaleRecords).to.equal(20);
  });

  it('parses the scale rows\' topic counts, "none" to skip them, and refuses anything else', () => {
    expect(parseOptions(["--scale-topics", "10, 200"])?.scaleTopics).to.deep.equal([10, 200]);
    expect(parseOptions(["--scale-topics", "none"])?.scaleTopics).to.deep.equal([]);
    expect(parseOptions(["--quick"])?.scaleTopics).to.deep.equal([10, 100]);
    expect(parseOptions(["--only", "scale"])?.only).to.equal("scale");
    expect(() => parseOptions(["--scale-topics", "0"])).to.throw(OptionsError, /--scale-topics/);
    expect(() => parseOptions(["--scale-topics", "ten"])).to.throw(OptionsError, /--scale-topics/);
  });

  it("applies --quick, and explicit options win over it", () => {
    const options = parseOptions(["--quick", "--records", "5000", "--only", "replication"]);
    expect(options?.records).to.equal(5000);
    expect(options?.latencySeconds).to.equal(QUICK.latencySeconds);
    expect(options?.partitions).to.equal(DEFAULTS.partitions);
    expect(options?.only).to.equal("replication");
  });

  it("returns null for --help and names the bad option otherwise", () => {
    expect(parseOptions(["--help"])).to.equal(null);
    expect(() => parseOptions(["--repeat", "0"])).to.throw(OptionsError, /--repeat/);
    expect(() => parseOptions(["--only", "x"])).to.throw(OptionsError, /--only/);
    expect(() => parseOptions(["--replicators", "mm2-default,kafka-connect"])).to.throw(
      OptionsError,
      /--replicators/,
    );
    expect(() => parseOptions(["--frobnicate"])).to.throw(OptionsError);
  });
});

describe("bench: /proc parsing", () => {
  it("reads user + system CPU seconds even when the command name has spaces and parentheses", () => {
    const fields = ["S", "1", "2", "3", "0", "-1", "4194560", "100", "0", "0", "0", "250", "125"];
    const stat = `4242 (Main (x) Thread) ${fields.join(" ")} 0 0 20 0 1 0`;
    expect(parseCpuSeconds(stat)).to.equal(3.75);
  });

  it("reads kB fields of /proc/<pid>/status as MiB", () => {
    const status = "Name:\tjava\nVmPeak:\t 4000000 kB\nVmHWM:\t  524288 kB\nVmRSS:\t  262144 kB\n";
    expect(parseStatusMiB(status, "VmHWM")).to.equal(512);
    expect(parseStatusMiB(status, "VmSwap")).to.equal(undefined);
  });
});

describe("bench: replicator configurations", () => {
  const source = { name: "dc1", brokers: ["127.0.0.1:9001"] };
  const destination = { name: "dc2", brokers: ["127.0.0.1:9002", "127.0.0.1:9003"] };

  it("writes mm2.properties for one flow, the run's topics and single-node replication factors", () => {
    const text = mm2Properties({ source, destination, topicPattern: "bench-ab-.*" }, {});
    const lines = text.trim().split("\n");
    expect(lines).to.include.members([
      "clusters=dc1,dc2",
      "dc1.bootstrap.servers=127.0.0.1:9001",
      "dc2.bootstrap.servers=127.0.0.1:9002,127.0.0.1:9003",
      "dc1->dc2.enabled=true",
      "dc2->dc1.enabled=false",
      "dc1->dc2.topics=bench-ab-.*",
      "replication.factor=1",
      "offset.storage.replication.factor=1",
    ]);
    expect(text).not.to.contain("tasks.max");
  });

  it("adds the tuned settings, renamed to the actual cluster names", () => {
    const text = mm2Properties(
      {
        source: { ...source, name: "east" },
        destination: { ...destination, name: "west" },
        topicPattern: "t",
      },
      mm2TunedSettings(4),
    );
    expect(text).to.contain("tasks.max=4\n");
    expect(text).to.contain("refresh.topics.interval.seconds=1\n");
    expect(text).to.contain("west.producer.max.in.flight.requests.per.connection=5\n");
    expect(text).to.contain("east.consumer.fetch.max.bytes=67108864\n");
    expect(text).not.to.match(/^dc[12]\./m);
  });

  it("configures the project's replicator for one full dc1 → dc2 rule", () => {
    const config = projectConfig(
      { source, destination, topicPattern: "bench-ab-.*", runId: "ab" },
      "exactly-once",
      500,
    );
    expect(config).to.deep.include({
      naming: "identity",
      discovery: { intervalMs: 500, include: ["bench-ab-.*"] },
      replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
    });
    expect((config.replicator as { delivery: string }).delivery).to.equal("exactly-once");
    // The replicator's own schema accepts it; `workers` passes through ("auto" unless given).
    expect(parseConfig(config).replicator.workers).to.equal("auto");
    const two = projectConfig(
      { source, destination, topicPattern: "t", runId: "ab" },
      "at-least-once",
      500,
      2,
    );
    expect(parseConfig(two).replicator).to.include({ workers: 2, delivery: "at-least-once" });
  });
});

describe("bench: Prometheus counters", () => {
  it("sums a counter over its label sets and ignores other metrics", () => {
    const text = [
      "# TYPE license_confirmed_total counter",
      'license_confirmed_total{chain="31337"} 10',
      'license_confirmed_total{chain="31338"} 5',
      'license_confirmed_total_created{chain="31338"} 1700000000',
      "license_failed_total 2",
    ].join("\n");
    expect(counterSum(text, "license_confirmed_total")).to.equal(15);
    expect(counterSum(text, "license_failed_total")).to.equal(2);
    expect(counterSum(text, "nothing")).to.equal(0);
  });
});

describe("bench: ratios against the targets", () => {
  const repRun = (drain: number, p99: number, discovery: number | null): ReplicationRun => ({
    runId: "x",
    loadSeconds: 1,
    drainSeconds: 1,
    drainRecordsPerSec: drain,
    drainMBPerSec: drain / 1000,
    steadyRecordsPerSec: drain * 2,
    startupSeconds: 1,
    latencyP50Ms: p99 / 2,
    latencyP99Ms: p99,
    latencyRecords: 10,
    discoveryMs: discovery,
    discoveryTimedOut: discovery === null,
    cpuSecondsDrain: 1,
    cpuSecondsTotal: 2,
    peakRssMiB: 100,
    drainDuplicates: 0,
  });
  const replicator = (id: string, runs: ReplicationRun[]): ReplicatorResult =>
    summarizeReplicator({ id, label: id, settings: {}, runs });
  const licRun = (rate: number): LicensingRun => ({
    licenses: 10,
    seconds: 10 / rate,
    licensesPerSec: rate,
    p50Ms: 1,
    p99Ms: 2,
    onChainIssued: 10,
    transactions: 10,
  });
  const method = (id: string, runs: LicensingRun[]): LicensingResult =>
    summarizeLicensing({ id, label: id, runs });

  it("compares the project's replicator with both MirrorMaker 2 variants", () => {
    const { ratios, targets } = evaluate(
      [
        replicator("mm2-default", [repRun(1000, 300, null), repRun(1000, 300, null)]),
        replicator("mm2-tuned", [repRun(4000, 200, 3000)]),
        replicator("project-alo", [repRun(3000, 100, 1500)]),
      ],
      undefined,
    );
    expect(ratios.find((r) => r.name === "mm2-tuned ÷ mm2-default, records/s")?.value).to.equal(4);
    const byName = new Map(targets.map((t) => [t.name, t]));
    expect(byName.get("project-alo: throughput vs MirrorMaker 2 defaults")).to.include({
      value: 3,
      met: true,
    });
    expect(byName.get("project-alo: throughput vs MirrorMaker 2 tuned")).to.include({
      value: 0.75,
      met: false,
    });
    expect(byName.get("project-alo: discovery of a new topic")).to.include({ value: 1500, met: true });
    expect(byName.get("project-alo: p99 end-to-end latency below MirrorMaker 2's")).to.include({
      value: 0.5,
      met: true,
    });
    expect(targets.some((t) => t.name.startsWith("project-eos"))).to.equal(false);
  });

  it("marks targets of a replicator that could not run as not measured", () => {
    const { targets } = evaluate(
      [
        replicator("mm2-default", [repRun(1000, 300, null)]),
        summarizeReplicator({
          id: "project-eos",
          label: "eos",
          settings: {},
          runs: [],
          status: "not-integrated",
          reason: "missing",
        }),
      ],
      undefined,
    );
    expect(targets.length).to.be.greaterThan(0);
    for (const target of targets) {
      expect(target.value).to.equal(null);
      expect(target.met).to.equal(null);
      expect(target.note).to.contain("not-integrated");
    }
  });

  it("checks licensing against 50× the naive client and 2,000 licenses/s", () => {
    const { ratios, targets } = evaluate(undefined, [
      method("naive", [licRun(10), licRun(20), licRun(30)]),
      method("raw", [licRun(600)]),
      method("batch", [licRun(3000)]),
      method("rest", [licRun(1500)]),
      method("rest-bulk", [licRun(2400)]),
    ]);
    expect(ratios.find((r) => r.name === "raw pipelined ÷ naive, licenses/s")?.value).to.equal(30);
    expect(ratios.find((r) => r.name === "REST ÷ batch pipelined, licenses/s")?.value).to.equal(0.5);
    expect(ratios.find((r) => r.name === "REST bulk ÷ batch pipelined, licenses/s")?.value).to.equal(0.8);
    const byName = new Map(targets.map((t) => [t.name, t]));
    expect(byName.get("REST vs naive client")).to.include({ value: 75, met: true });
    expect(byName.get("REST licenses/s confirmed across the chains")).to.include({ value: 1500, met: false });
    // the bulk endpoint is its own row, checked against the same targets
    expect(byName.get("REST bulk endpoint vs naive client")).to.include({ value: 120, met: true });
    expect(byName.get("REST bulk endpoint licenses/s confirmed across the chains")).to.include({
      value: 2400,
      met: true,
    });
  });

  it("ignores failed repetitions in the summary and reports a method without any success as failed", () => {
    const failed = { ...licRun(1), error: "boom" };
    expect(method("naive", [failed, licRun(10)]).summary.licensesPerSec?.values).to.deep.equal([10]);
    expect(method("naive", [failed]).status).to.equal("failed");
  });
});
