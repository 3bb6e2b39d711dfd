/**
 * The replicator CLI as a separate process: --help, a bad configuration, and SIGKILL mid-stream
 * (several times) without losing a record; SIGTERM ends it cleanly.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { getKafka, randomTopic } from "../fixtures/infra.js";
import { collect, createTopic, kafkaOf, produce, stopCollectors, waitFor } from "./helpers.js";
import { ownerIndex } from "../../replicator/assignment.js";
import { exitOf, killChildren, logLines, runCli, running } from "./cli-helpers.js";

describe("replicator CLI", function () {
  this.timeout(120_000);
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "lp-replicator-"));
  });

  afterEach(async () => {
    await killChildren();
    await stopCollectors();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A configuration file replicating `topic` from dc1 to dc2 (one `full` rule), with these settings. */
  async function fullRuleConfig(topic: string, replicator: Record<string, unknown>): Promise<string> {
    const set = await getKafka();
    const file = join(dir, "replicator.json");
    writeFileSync(
      file,
      JSON.stringify({
        replicator,
        datacenters: set.clusters.map((c) => ({ name: c.name, brokers: c.brokers })),
        discovery: { intervalMs: 500, include: [topic] },
        replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
      }),
    );
    return file;
  }

  it("--help prints usage and exits 0", async () => {
    const child = runCli(["--help"]);
    expect((await exitOf(child)).code).to.equal(0);
    expect(child.output.stdout).to.contain("Usage: replicator --config <file>");
    expect(child.output.stdout).to.contain("/metrics");
  });

  it("refuses to start on an invalid configuration, naming the field", async () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(
      file,
      [
        "datacenters:",
        "  - { name: dc1, brokers: ['127.0.0.1:1'] }",
        "  - { name: dc2, brokers: ['127.0.0.1:2'] }",
        "replication:",
        "  - { model: full, sources: [dc1], destinations: [dc2, dc9] }",
      ].join("\n"),
    );
    const child = runCli(["--config", file]);
    expect((await exitOf(child)).code).to.equal(2);
    expect(child.output.stderr).to.contain("replication[0].destinations[1]: unknown datacenter 'dc9'");
    const missing = runCli([]);
    expect((await exitOf(missing)).code).to.equal(2);
    expect(missing.output.stderr).to.contain("missing --config");
  });

  it("applies a changed configuration file without a restart and ignores an invalid one", async () => {
    const set = await getKafka();
    const topic = randomTopic("watch");
    await createTopic("dc1", topic, 1);
    await produce("dc1", topic, [{ value: "w" }]);
    const file = join(dir, "replicator.yaml");
    const write = (destinations: string[]) =>
      writeFileSync(
        file,
        JSON.stringify({
          replicator: { id: randomTopic("w") },
          datacenters: set.clusters.map((c) => ({ name: c.name, brokers: c.brokers })),
          discovery: { intervalMs: 500, include: [topic] },
          replication: [{ model: "full", sources: ["dc1"], destinations }],
        }),
      );
    write(["dc2"]);
    const child = runCli(["--config", file]);
    await running(child);
    await (await collect("dc2", topic)).waitForCount(1, 30_000);
    write(["dc2", "dc3"]);
    const got = await (await collect("dc3", topic)).waitForCount(1, 30_000);
    expect(got[0]?.value?.toString()).to.equal("w");
    writeFileSync(file, "replication: [{ model: full, sources: [dc1], destinations: [dc9] }]\n");
    // The rejection of this file (the watcher may also have caught an earlier write half done and rejected it).
    await waitFor(
      () =>
        logLines(child.output.stdout).some(
          (l) =>
            l.msg === "configuration change rejected" &&
            JSON.stringify(l.err).includes("datacenters: Required"),
        ),
      15_000,
      "rejection logged",
    );
    expect(child.exitCode).to.equal(null);
    child.kill("SIGTERM");
    expect((await exitOf(child)).code).to.equal(0);
  });

  it("replicator.workers: engines in worker threads share the partitions; /status and /metrics answer for all", async () => {
    const topic = randomTopic("workers");
    await createTopic("dc1", topic, 4);
    const id = randomTopic("w");
    const file = await fullRuleConfig(topic, { id, workers: 2 });
    const child = runCli(["--config", file]);
    await running(child);
    const total = 800;
    await produce(
      "dc1",
      topic,
      Array.from({ length: total }, (_, i) => ({ partition: i % 4, key: `k${i}`, value: `v${i}` })),
    );
    const out = await collect("dc2", topic);
    await out.waitForCount(total, 60_000);
    const url = /"url":"(http:\/\/[^"]+)","msg":"admin listening"/.exec(child.output.stdout)?.[1];
    expect(url, "admin url logged").to.be.a("string");
    // Each engine logs the partitions its consumer got; together they hold all four, each engine some.
    const shares = new Map<number, number[]>();
    for (const line of child.output.stdout.split("\n")) {
      if (!line.includes('"msg":"partitions assigned"')) continue;
      const entry = JSON.parse(line) as { worker: number; assigned: Record<string, number[]> };
      shares.set(entry.worker, entry.assigned[topic] ?? []);
    }
    expect([...shares.keys()].sort()).to.deep.equal([0, 1]);
    expect([...shares.values()].every((assigned) => assigned.length > 0)).to.equal(true);
    let pipelineStatus: { assigned: number[]; records: number } | undefined;
    await waitFor(
      async () => {
        const status = (await (await fetch(`${url}/status`)).json()) as {
          workers: number;
          pipelines: { source: { topic: string }; assigned: number[]; records: number }[];
        };
        expect(status.workers).to.equal(2);
        pipelineStatus = status.pipelines.find((p) => p.source.topic === topic);
        return pipelineStatus?.records === total;
      },
      15_000,
      "status counts every record",
    );
    expect(pipelineStatus?.assigned).to.deep.equal([0, 1, 2, 3]);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const counted = metrics
      .split("\n")
      .filter((l) => l.startsWith("lp_replicator_records_total{") && l.includes(`topic="${topic}"`))
      .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
    expect(counted).to.equal(total);
    expect(metrics).to.match(/^lp_replicator_process_cpu_seconds_total \d/m);
    expect((await fetch(`${url}/healthz`)).status).to.equal(200);
    // A delivery switch at runtime would mix round-robin and static members in one group (and hand
    // partitions to engines without their transactional id): it takes effect after a restart only.
    await fullRuleConfig(topic, { id, workers: 2, delivery: "exactly-once" });
    // The pool pins the delivery for every engine (also for a thread started again later): one warning.
    await waitFor(
      () => child.output.stdout.includes("replicator.delivery changed: takes effect after a restart"),
      15_000,
      "delivery change deferred",
    );
    await produce(
      "dc1",
      topic,
      Array.from({ length: 100 }, (_, i) => ({ partition: i % 4, value: `after${i}` })),
    );
    await out.waitForCount(total + 100, 30_000);
    expect(child.output.stdout).not.to.contain('"transactionalId"');
    const deferred = logLines(child.output.stdout).filter(
      (l) => l.msg === "replicator.delivery changed: takes effect after a restart",
    );
    // Logged by the pool (no "worker" field), which forwards the pinned delivery: no engine sees a change.
    expect(deferred.length).to.be.greaterThan(0);
    expect(deferred.filter((l) => l.worker !== undefined)).to.deep.equal([]);
    expect(child.output.stdout).not.to.contain("INCONSISTENT_GROUP_PROTOCOL");
    child.kill("SIGTERM");
    expect((await exitOf(child)).code).to.equal(0);
    expect(out.records.map((r) => r.value?.toString()).sort()).to.deep.equal(
      [
        ...Array.from({ length: total }, (_, i) => `v${i}`),
        ...Array.from({ length: 100 }, (_, i) => `after${i}`),
      ].sort(),
    );
  });

  it("exactly-once with 2 engines: engine k owns the partitions p mod 2 = k with its own transactional id; each record once", async () => {
    const topic = randomTopic("eosworkers");
    const partitions = 6;
    await createTopic("dc1", topic, partitions);
    const id = randomTopic("e");
    const file = await fullRuleConfig(topic, { id, workers: 2, delivery: "exactly-once" });
    const child = runCli(["--config", file]);
    await running(child);
    const total = 3000;
    const send = (from: number, count: number) =>
      produce(
        "dc1",
        topic,
        Array.from({ length: count }, (_, j) => ({
          partition: (from + j) % partitions,
          key: `k${from + j}`,
          value: `v${from + j}`,
        })),
      );
    await send(0, total / 2);
    const out = await collect("dc2", topic); // read_committed
    await send(total / 2, total / 2);
    await out.waitForCount(total, 60_000);
    const url = /"url":"(http:\/\/[^"]+)","msg":"admin listening"/.exec(child.output.stdout)?.[1];
    expect(url, "admin url logged").to.be.a("string");
    let pipelineStatus: { assigned: number[]; records: number; state: string } | undefined;
    await waitFor(
      async () => {
        const status = (await (await fetch(`${url}/status`)).json()) as {
          workers: number;
          pipelines: { source: { topic: string }; assigned: number[]; records: number; state: string }[];
        };
        expect(status.workers).to.equal(2);
        pipelineStatus = status.pipelines.find((p) => p.source.topic === topic);
        return pipelineStatus?.records === total;
      },
      15_000,
      "status counts every record",
    );
    expect(pipelineStatus?.assigned).to.deep.equal(Array.from({ length: partitions }, (_, p) => p));
    expect(pipelineStatus?.state).to.equal("running");
    // Late duplicates, if any, would show by now.
    await new Promise((r) => setTimeout(r, 1500));
    const lines = logLines(child.output.stdout);
    // Every assignment an engine received holds only its own partitions; the last one holds all of them.
    const own = (k: number) =>
      Array.from({ length: partitions }, (_, p) => p).filter((p) => ownerIndex(topic, p, 2) === k);
    const groupId = `lp.replicator.${id}.dc1.dc2`;
    for (const k of [0, 1]) {
      const assignments = lines
        .filter((l) => l.msg === "partitions assigned" && l.worker === k)
        .map((l) => (l.assigned as Record<string, number[]>)[topic] ?? []);
      expect(assignments.length, `engine ${k} joined`).to.be.greaterThan(0);
      for (const a of assignments) expect(own(k)).to.include.members(a);
      expect(assignments.at(-1)).to.deep.equal(own(k));
      const started = lines.find((l) => l.msg === "link consumer started" && l.worker === k);
      expect(started?.transactionalId).to.equal(`${groupId}.${k}`);
    }
    // Each record exactly once: the count, the values and the provenance (origin partition and offset).
    expect(out.records).to.have.length(total);
    expect(new Set(out.records.map((r) => r.value?.toString())).size).to.equal(total);
    const origins = out.records.map(
      (r) => `${r.headers["lp.origin.partition"]}@${r.headers["lp.origin.offset"]}`,
    );
    expect(new Set(origins).size).to.equal(total);
    for (const r of out.records) expect(r.partition).to.equal(Number(r.headers["lp.origin.partition"]));
    child.kill("SIGTERM");
    expect((await exitOf(child)).code).to.equal(0);
  });

  interface KillRun {
    /** SIGKILLs, each once the restarted replicator has replicated something. */
    kills: number;
    /** SIGKILL (a crash), or SIGTERM (a graceful stop: exit 0, everything sent is committed). Default SIGKILL. */
    signal?: "SIGKILL" | "SIGTERM";
    /** Records produced per second, at least `minRecords` in all (the producer also runs until the last restart replicates). */
    perSecond: number;
    minRecords: number;
  }

  /**
   * Streams into a 4-partition topic while the replicator is SIGKILLed `kills` times and restarted; every
   * produced record must arrive. Logs, per kill, the duplicates it caused and the time from the restart to
   * the first partition assignment.
   */
  async function killMidStream(
    delivery: "at-least-once" | "exactly-once",
    run: KillRun,
  ): Promise<{ values: string[]; produced: number; perKill: { duplicates: number; assignedMs: number }[] }> {
    const topic = randomTopic("kill");
    await createTopic("dc1", topic, 4);
    const file = await fullRuleConfig(topic, { id: randomTopic("r"), delivery });
    // The producer runs until the last restart is done (and `minRecords` are out), so every kill happens mid-stream.
    const perSend = Math.max(1, Math.round(run.perSecond / 10));
    let produced = 0;
    let producerDone = false;
    const producer = (await kafkaOf("dc1")).producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const producing = (async () => {
      const started = Date.now();
      while (!producerDone || produced < run.minRecords) {
        const i = produced;
        await producer.send({
          topic,
          acks: -1,
          messages: Array.from({ length: perSend }, (_, j) => ({
            key: `k${(i + j) % 13}`,
            value: `v${i + j}`,
          })),
        });
        produced = i + perSend;
        // Paced at `perSecond` from the start (a slow send is caught up, not lost).
        const due = started + (produced / run.perSecond) * 1000;
        await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
      }
    })();

    let child = runCli(["--config", file]);
    await running(child);
    // The default `workers: auto` (one engine per core, at most 4): several engines on a multi-core machine.
    const engines = logLines(child.output.stdout).find((l) => l.msg === "replication engines")?.workers;
    expect(engines).to.equal(Math.min(4, availableParallelism()));
    console.log(`      ${delivery}: ${engines} engines`);
    // read_committed: records of aborted (killed) transactions are not seen.
    const out = await collect("dc2", topic);
    const duplicates = () => out.records.length - new Set(out.records.map((r) => r.value?.toString())).size;
    const perKill: { duplicates: number; assignedMs: number }[] = [];
    for (let kill = 1; kill <= run.kills; kill++) {
      const seen = out.records.length;
      await waitFor(
        () => out.records.length > seen + run.perSecond / 10,
        60_000,
        `replication progress before kill ${kill}`,
      );
      const before = duplicates();
      const signal = run.signal ?? "SIGKILL";
      child.kill(signal);
      const exit = await exitOf(child);
      if (signal === "SIGKILL") expect(exit.signal).to.equal("SIGKILL");
      else expect(exit.code, "a graceful stop exits 0").to.equal(0);
      const killedWith = out.records.length;
      const restartedAt = Date.now();
      child = runCli(["--config", file]);
      await running(child);
      // The restart's first assignment, then enough progress for the re-sent records to have arrived.
      const assigned = () => logLines(child.output.stdout).find((l) => l.msg === "partitions assigned");
      await waitFor(() => assigned() !== undefined, 60_000, `a partition assignment after restart ${kill}`);
      const assignedMs = Number(assigned()!.time) - restartedAt;
      const resumed = out.records.length;
      await waitFor(
        () => out.records.length > resumed + run.perSecond / 5,
        60_000,
        `replication progress after restart ${kill}`,
      );
      // A kill's duplicates: those seen from it to the next kill (the last: to the end), counted below.
      perKill.push({ duplicates: -before, assignedMs });
      if (kill > 1) perKill[kill - 2]!.duplicates += before;
      console.log(
        `      ${delivery} kill ${kill}: ${signal} with ${killedWith} records in dc2, ${produced} produced; ` +
          `first assignment ${assignedMs} ms after the restart`,
      );
    }
    producerDone = true;
    await producing;
    await producer.disconnect();
    const total = produced;
    const want = Array.from({ length: total }, (_, i) => `v${i}`);
    await waitFor(
      () => {
        const have = new Set(out.records.map((r) => r.value?.toString()));
        return want.every((v) => have.has(v));
      },
      60_000,
      "every produced record in dc2",
    );
    // Give late duplicates, if any, the time to show.
    await new Promise((r) => setTimeout(r, 1500));
    const values = out.records.map((r) => r.value?.toString() ?? "");
    perKill.at(-1)!.duplicates += duplicates();
    console.log(
      `      ${delivery}: ${total} produced, ${values.length} received in dc2, ${duplicates()} duplicates; ` +
        `per kill ${perKill.map((k) => k.duplicates).join(", ")}`,
    );
    child.kill("SIGTERM");
    const exit = await exitOf(child);
    expect(exit.code).to.equal(0);
    expect(child.output.stdout).to.contain('"msg":"replicator stopped"');
    expect(new Set(values)).to.deep.equal(new Set(want));
    return { values, produced: total, perKill };
  }

  it("at-least-once: 5 SIGKILLs in a 200,000-record stream at 10,000/s lose no record; SIGTERM exits cleanly", async function () {
    this.timeout(240_000);
    await killMidStream("at-least-once", { kills: 5, perSecond: 10_000, minRecords: 200_000 });
  });

  it("at-least-once: 5 SIGTERMs in a stream at 10,000/s: each stop commits what it sent, so no record arrives twice", async function () {
    this.timeout(240_000);
    const { values, produced } = await killMidStream("at-least-once", {
      kills: 5,
      signal: "SIGTERM",
      perSecond: 10_000,
      minRecords: 100_000,
    });
    expect(values).to.have.length(produced);
  });

  it("exactly-once: SIGKILL mid-stream twice neither loses nor duplicates a record (read_committed)", async () => {
    const { values, produced } = await killMidStream("exactly-once", {
      kills: 2,
      perSecond: 400,
      minRecords: 0,
    });
    expect(values).to.have.length(produced);
  });
});
