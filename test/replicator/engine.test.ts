/**
 * Replicator end to end against the real local datacenters dc1, dc2, dc3 (shared fixture).
 * Every test uses fresh random topic names and stops the replicators and consumers it starts.
 */
import { expect } from "chai";
import kafkajs from "kafkajs";
import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo } from "node:net";
import { pino } from "pino";
import { startAdminServer } from "../../replicator/admin.js";
import { CHUNK_HEADERS, Reassembler } from "../../replicator/chunking.js";
import { parseConfig } from "../../replicator/config.js";
import type { ReplicatorStatus } from "../../replicator/engine.js";
import { registerApplication, unregisterApplication } from "../../replicator/registry.js";
import { HEADERS } from "../../replicator/policy.js";
import { getKafka, randomTopic } from "../fixtures/infra.js";
import {
  collect,
  createTopic,
  kafkaOf,
  produce,
  startReplicator,
  stopCollectors,
  stopReplicators,
  testConfig,
  waitFor,
} from "./helpers.js";
import { ownerIndex } from "../../replicator/assignment.js";

describe("replicator (real Kafka datacenters)", function () {
  this.timeout(90_000);

  afterEach(async () => {
    await stopCollectors();
    await stopReplicators();
  });

  it("full model dc1→dc2: a topic created after start is replicated from its earliest offset", async () => {
    const prefix = randomTopic("full");
    const r = await startReplicator(
      await testConfig({
        discovery: { include: [`${prefix}.*`] },
        replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
      }),
    );
    const topic = `${prefix}-orders`;
    const t0 = Date.now();
    await createTopic("dc1", topic, 2);
    await produce("dc1", topic, [
      { key: "a", value: "first", partition: 0 },
      { key: "b", value: "second", partition: 1 },
    ]);
    const out = await collect("dc2", topic);
    const got = await out.waitForCount(2, 30_000);
    const latencyMs = Date.now() - t0;
    console.log(
      `      discovery + replication latency (topic created → records consumed in dc2): ${latencyMs} ms`,
    );
    expect(latencyMs).to.be.below(15_000);
    expect(got.map((g) => `${g.partition}:${g.key}:${g.value?.toString()}`).sort()).to.deep.equal([
      "0:a:first",
      "1:b:second",
    ]);
    const status = await r.status({ lag: true });
    const pipeline = status.pipelines.find((p) => p.source.topic === topic);
    expect(pipeline?.state).to.equal("running");
    expect(pipeline?.destination).to.deep.equal({ datacenter: "dc2", topic, partitions: 2 });
  });

  it("fidelity: keys, headers, timestamps, partitions, tombstones, order and topic configs", async () => {
    const topic = randomTopic("fid");
    await createTopic("dc1", topic, 3, [
      { name: "cleanup.policy", value: "compact" },
      { name: "max.message.bytes", value: "500000" },
    ]);
    const base = Date.now() - 3_600_000;
    const messages = [];
    for (let i = 0; i < 60; i++) {
      messages.push({
        key: `k${i % 7}`,
        value: i % 10 === 9 ? null : `v${i}`,
        partition: i % 3,
        timestamp: String(base + i),
        headers: { n: String(i), bin: Buffer.from([0, 1, 2, i]) },
      });
    }
    await produce("dc1", topic, messages);
    await startReplicator(
      await testConfig({
        discovery: { include: [topic] },
        replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
      }),
    );
    const got = await (await collect("dc2", topic)).waitForCount(60, 30_000);
    expect(got).to.have.length(60);
    for (let p = 0; p < 3; p++) {
      const inPartition = got
        .filter((g) => g.partition === p)
        .sort((a, b) => Number(a.offset) - Number(b.offset));
      const expected = messages.filter((m) => m.partition === p);
      expect(inPartition.map((g) => g.headers.n)).to.deep.equal(expected.map((m) => m.headers.n));
      inPartition.forEach((g, j) => {
        const m = expected[j]!;
        expect(g.key).to.equal(m.key);
        expect(g.value === null ? null : g.value.toString()).to.equal(m.value);
        expect(g.timestamp).to.equal(m.timestamp);
        expect(g.headers.bin).to.equal(m.headers.bin.toString());
        expect(g.headers[HEADERS.originDc]).to.equal("dc1");
        expect(g.headers[HEADERS.originTopic]).to.equal(topic);
        expect(g.headers[HEADERS.originPartition]).to.equal(String(p));
        expect(g.headers[HEADERS.originOffset]).to.equal(String(j));
      });
    }
    const admin = (await kafkaOf("dc2")).admin();
    await admin.connect();
    try {
      const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
      expect(meta?.partitions).to.have.length(3);
      const cfg = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          {
            type: kafkajs.ConfigResourceTypes.TOPIC,
            name: topic,
            configNames: ["cleanup.policy", "max.message.bytes"],
          },
        ],
      });
      const entries = Object.fromEntries(
        (cfg.resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]),
      );
      expect(entries).to.deep.equal({ "cleanup.policy": "compact", "max.message.bytes": "500000" });
    } finally {
      await admin.disconnect();
    }
  });

  for (const delivery of ["at-least-once", "exactly-once"] as const)
    it(`prefixed naming, ${delivery}: dc1's topic arrives in dc3 as dc1.<topic>`, async () => {
      const topic = randomTopic("pre");
      await createTopic("dc1", topic, 1);
      await produce("dc1", topic, [{ key: "k", value: "v" }]);
      await startReplicator(
        await testConfig({
          replicator: { delivery },
          naming: "prefixed",
          discovery: { include: [topic, `dc\\d\\.${topic}`] },
          replication: [{ model: "full", sources: ["dc1"], destinations: ["dc3"] }],
        }),
      );
      const got = await (await collect("dc3", `dc1.${topic}`)).waitForCount(1);
      expect(got[0]?.value?.toString()).to.equal("v");
      expect(got[0]?.headers[HEADERS.originDc]).to.equal("dc1");
    });

  it("active-active dc1<->dc2 with producers on both sides: each record exactly once per datacenter, no loop", async () => {
    const topic = randomTopic("aa");
    await createTopic("dc1", topic, 2);
    await createTopic("dc2", topic, 2);
    const r = await startReplicator(
      await testConfig({
        discovery: { include: [topic] },
        replication: [{ model: "active-active", datacenters: ["dc1", "dc2"] }],
      }),
    );
    const n = 150;
    const batch = (dc: string, from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => ({ key: `k${from + i}`, value: `${dc}-${from + i}` }));
    // Producers on both sides at once, in several rounds while replication runs.
    for (let round = 0; round < 3; round++) {
      const from = (round * n) / 3;
      const to = ((round + 1) * n) / 3;
      await Promise.all([
        produce("dc1", topic, batch("dc1", from, to)),
        produce("dc2", topic, batch("dc2", from, to)),
      ]);
    }
    const [in1, in2] = await Promise.all([collect("dc1", topic), collect("dc2", topic)]);
    await Promise.all([in1.waitForCount(2 * n, 30_000), in2.waitForCount(2 * n, 30_000)]);
    // Let any looping copy show up before counting.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    for (const [dc, c] of [
      ["dc1", in1],
      ["dc2", in2],
    ] as const) {
      const values = c.records.map((x) => x.value?.toString() ?? "");
      expect(values, `records in ${dc}`).to.have.length(2 * n);
      expect(new Set(values).size, `distinct records in ${dc}`).to.equal(2 * n);
      // Records produced in a datacenter carry no provenance there; replicas name the other side.
      for (const x of c.records) {
        const producedHere = x.value?.toString().startsWith(`${dc}-`);
        expect(x.headers[HEADERS.originDc]).to.equal(producedHere ? undefined : dc === "dc1" ? "dc2" : "dc1");
      }
    }
    const status = await r.status();
    expect(status.pipelines.map((p) => p.id).sort()).to.deep.equal([
      `dc1/${topic}->dc2/${topic}`,
      `dc2/${topic}->dc1/${topic}`,
    ]);
    // Each side read the other's replicas and skipped them as cycles.
    expect(status.pipelines.every((p) => p.records === n && p.skipped === n)).to.equal(true);
  });

  it("active-active dc1, dc2, dc3 with prefixed naming: every replica exactly once, no replica of a replica", async () => {
    const topic = randomTopic("aa3");
    const dcs = ["dc1", "dc2", "dc3"] as const;
    await Promise.all(dcs.map((dc) => createTopic(dc, topic, 1)));
    await startReplicator(
      await testConfig({
        naming: "prefixed",
        discovery: { include: [topic, `dc\\d\\.${topic}`, `dc\\d\\.dc\\d\\.${topic}`] },
        replication: [{ model: "active-active", datacenters: [...dcs] }],
      }),
    );
    const n = 40;
    await Promise.all(
      dcs.map((dc) =>
        produce(
          dc,
          topic,
          Array.from({ length: n }, (_, i) => ({ value: `${dc}-${i}` })),
        ),
      ),
    );
    for (const dc of dcs) {
      for (const origin of dcs.filter((o) => o !== dc)) {
        const got = await (await collect(dc, `${origin}.${topic}`)).waitForCount(n, 30_000);
        expect(got.map((x) => x.value?.toString())).to.deep.equal(
          Array.from({ length: n }, (_, i) => `${origin}-${i}`),
        );
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (const dc of dcs) {
      const admin = (await kafkaOf(dc)).admin();
      await admin.connect();
      try {
        const names = (await admin.listTopics()).filter((t) => t.endsWith(topic)).sort();
        expect(names, `topics in ${dc}`).to.deep.equal(
          [topic, ...dcs.filter((o) => o !== dc).map((o) => `${o}.${topic}`)].sort(),
        );
        for (const name of names) {
          const high = (await admin.fetchTopicOffsets(name)).reduce((sum, o) => sum + Number(o.high), 0);
          expect(high, `${dc}/${name}`).to.equal(n);
        }
      } finally {
        await admin.disconnect();
      }
    }
  });

  it("routing: a record reaches exactly the datacenters named in its destinations header", async () => {
    const topic = randomTopic("route");
    await createTopic("dc1", topic, 1);
    const d = HEADERS.destinations;
    await produce("dc1", topic, [
      { value: "to-dc2", headers: { [d]: "dc2" } },
      { value: "to-dc3", headers: { [d]: "dc3" } },
      { value: "nowhere" },
      { value: "to-both", headers: { [d]: "dc2,dc3" } },
    ]);
    await startReplicator(
      await testConfig({
        discovery: { include: [topic] },
        replication: [{ model: "routing", sources: ["dc1"], destinations: ["dc2", "dc3"] }],
      }),
    );
    const [in2, in3] = await Promise.all([collect("dc2", topic), collect("dc3", topic)]);
    // One partition, order kept: once "to-both" (last) arrived, everything before it has too.
    await waitFor(() => in2.records.some((x) => x.value?.toString() === "to-both"), 30_000, "to-both in dc2");
    await waitFor(() => in3.records.some((x) => x.value?.toString() === "to-both"), 30_000, "to-both in dc3");
    expect(in2.records.map((x) => x.value?.toString())).to.deep.equal(["to-dc2", "to-both"]);
    expect(in3.records.map((x) => x.value?.toString())).to.deep.equal(["to-dc3", "to-both"]);
  });

  it("logical groups: each group goes to its own datacenters", async () => {
    const prefix = randomTopic("grp");
    const sales = `${prefix}-sales`;
    const audit = `${prefix}-audit`;
    await createTopic("dc1", sales);
    await createTopic("dc1", audit);
    await produce("dc1", sales, [{ value: "s" }]);
    await produce("dc1", audit, [{ value: "a" }]);
    const r = await startReplicator(
      await testConfig({
        discovery: { include: [`${prefix}-.*`] },
        replication: [
          {
            model: "groups",
            sources: ["dc1"],
            groups: [
              { name: "sales", topics: [".*-sales"], destinations: ["dc2"] },
              { name: "audit", topics: [".*-audit"], destinations: ["dc2", "dc3"] },
            ],
          },
        ],
      }),
    );
    const [s2, a2, a3] = await Promise.all([
      collect("dc2", sales),
      collect("dc2", audit),
      collect("dc3", audit),
    ]);
    await Promise.all([s2.waitForCount(1), a2.waitForCount(1), a3.waitForCount(1)]);
    const status = await r.status();
    expect(status.pipelines.map((p) => `${p.id}:${p.group}`).sort()).to.deep.equal([
      `dc1/${audit}->dc2/${audit}:audit`,
      `dc1/${audit}->dc3/${audit}:audit`,
      `dc1/${sales}->dc2/${sales}:sales`,
    ]);
  });

  it("multi-source merge: dc1 and dc2 streams merged into one dc3 stream, origin in headers, order per origin", async () => {
    const topic = randomTopic("merge");
    await createTopic("dc1", topic, 1);
    await createTopic("dc2", topic, 1);
    const n = 30;
    await Promise.all(
      ["dc1", "dc2"].map((dc) =>
        produce(
          "dc1" === dc ? "dc1" : "dc2",
          topic,
          Array.from({ length: n }, (_, i) => ({ value: `${dc}-${i}` })),
        ),
      ),
    );
    await startReplicator(
      await testConfig({
        discovery: { include: [topic] },
        replication: [{ model: "merge", sources: ["dc1", "dc2"], destinations: ["dc3"] }],
      }),
    );
    const got = await (await collect("dc3", topic)).waitForCount(2 * n, 30_000);
    expect(got).to.have.length(2 * n);
    for (const dc of ["dc1", "dc2"]) {
      const fromDc = got.filter((x) => x.headers[HEADERS.originDc] === dc);
      expect(fromDc.map((x) => x.value?.toString())).to.deep.equal(
        Array.from({ length: n }, (_, i) => `${dc}-${i}`),
      );
      expect(fromDc.map((x) => Number(x.headers[HEADERS.originOffset]))).to.deep.equal(
        Array.from({ length: n }, (_, i) => i),
      );
    }
  });

  it("a record over the destination limit arrives in chunks and is reassembled by the consumer helper", async () => {
    const topic = randomTopic("big");
    await createTopic("dc1", topic, 1);
    const big = randomBytes(200_000);
    await produce("dc1", topic, [
      { key: "s1", value: "small-1" },
      { key: "big", value: big },
      { key: "s2", value: "small-2" },
    ]);
    await startReplicator(
      await testConfig({
        replicator: { maxRecordBytes: 32_768 },
        discovery: { include: [topic] },
        replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
      }),
    );
    const c = await collect("dc2", topic);
    await waitFor(() => c.records.some((x) => x.value?.toString() === "small-2"), 30_000, "small-2 in dc2");
    const chunks = c.records.filter((x) => x.headers[CHUNK_HEADERS.id] !== undefined);
    expect(chunks.length).to.be.greaterThan(6);
    chunks.forEach((x) => expect(x.value?.length ?? 0).to.be.below(32_768));
    const re = new Reassembler();
    const whole = c.records
      .map((x) =>
        re.push({ key: x.key === null ? null : Buffer.from(x.key), value: x.value, headers: x.headers }),
      )
      .filter((x) => x !== undefined);
    expect(whole.map((x) => x.key?.toString())).to.deep.equal(["s1", "big", "s2"]);
    expect(whole[1]?.value?.equals(big)).to.equal(true);
    expect(whole[1]?.headers?.[HEADERS.originOffset]).to.equal("1");
  });

  it("a configuration change is applied without a restart", async () => {
    const topic = randomTopic("reload");
    await createTopic("dc1", topic, 1);
    await produce("dc1", topic, [{ value: "x" }]);
    const cfg = await testConfig({
      discovery: { include: [topic] },
      replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
    });
    const r = await startReplicator(cfg);
    await (await collect("dc2", topic)).waitForCount(1);
    r.updateConfig(
      await testConfig({
        discovery: { include: [topic] },
        replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2", "dc3"] }],
      }),
    );
    const got = await (await collect("dc3", topic)).waitForCount(1);
    expect(got[0]?.value?.toString()).to.equal("x");
  });

  it("partitions added later are mirrored; a deleted source topic ends its pipeline", async () => {
    const topic = randomTopic("grow");
    await createTopic("dc1", topic, 1);
    await produce("dc1", topic, [{ value: "p0" }]);
    const r = await startReplicator(
      await testConfig({
        discovery: { include: [topic] },
        replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
      }),
    );
    const out = await collect("dc2", topic);
    await out.waitForCount(1);
    const admin = (await kafkaOf("dc1")).admin();
    await admin.connect();
    try {
      await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
      await produce("dc1", topic, [{ value: "p2", partition: 2 }]);
      const pipelineId = `dc1/${topic}->dc2/${topic}`;
      await waitFor(
        async () => {
          const p = (await r.status()).pipelines.find((x) => x.id === pipelineId);
          return p?.state === "running" && p.destination.partitions === 3;
        },
        15_000,
        "target topic grown to 3 partitions",
      );
      // A fresh reader: a running kafkajs consumer only sees new partitions after a metadata refresh.
      const after = await collect("dc2", topic);
      await waitFor(() => after.records.some((x) => x.value?.toString() === "p2"), 30_000, "p2 in dc2");
      expect(after.records.find((x) => x.value?.toString() === "p2")?.partition).to.equal(2);
      await admin.deleteTopics({ topics: [topic] });
      await waitFor(
        async () => (await r.status()).pipelines.every((p) => p.id !== pipelineId),
        15_000,
        "pipeline end",
      );
    } finally {
      await admin.disconnect();
    }
  });

  it("registration: an application announced on the registry topic is replicated; unregistering ends it", async () => {
    const topic = randomTopic("reg");
    await createTopic("dc1", topic, 1);
    await produce("dc1", topic, [{ value: "registered" }]);
    const r = await startReplicator(
      await testConfig({ discovery: { include: ["nothing-matches-this"] }, replication: [] }),
    );
    await registerApplication(await kafkaOf("dc1"), { topic, group: "billing", destinations: ["dc3"] });
    const got = await (await collect("dc3", topic)).waitForCount(1, 30_000);
    expect(got[0]?.value?.toString()).to.equal("registered");
    const pipelineId = `dc1/${topic}->dc3/${topic}`;
    expect((await r.status()).pipelines.find((p) => p.id === pipelineId)?.group).to.equal("billing");
    await unregisterApplication(await kafkaOf("dc1"), topic);
    await waitFor(
      async () => (await r.status()).pipelines.every((p) => p.id !== pipelineId),
      15_000,
      "pipeline end",
    );
  });

  it("two replicators with the same id share a pipeline's partitions; when one stops the other takes over", async () => {
    const topic = randomTopic("share");
    await createTopic("dc1", topic, 4);
    const config = await testConfig({
      replicator: { id: randomTopic("shared") },
      discovery: { include: [topic] },
      replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
    });
    const [r1, r2] = [await startReplicator(config), await startReplicator(config)];
    const pipelineId = `dc1/${topic}->dc2/${topic}`;
    const assigned = async (r: typeof r1) =>
      (await r.status()).pipelines.find((p) => p.id === pipelineId)?.assigned ?? [];
    await waitFor(
      async () => {
        const [a, b] = [await assigned(r1), await assigned(r2)];
        return a.length > 0 && b.length > 0 && [...a, ...b].sort().join() === "0,1,2,3";
      },
      30_000,
      "partitions split between the two replicators",
    );
    const batch = (from: number) =>
      Array.from({ length: 100 }, (_, i) => ({ value: `m${from + i}`, partition: (from + i) % 4 }));
    await produce("dc1", topic, batch(0));
    const out = await collect("dc2", topic);
    await out.waitForCount(100, 30_000);
    const records = async (r: typeof r1) =>
      (await r.status()).pipelines.find((p) => p.id === pipelineId)?.records ?? 0;
    expect(await records(r1)).to.be.greaterThan(0);
    expect(await records(r2)).to.be.greaterThan(0);
    expect((await records(r1)) + (await records(r2))).to.equal(100);

    await r2.stop();
    await waitFor(async () => (await assigned(r1)).join() === "0,1,2,3", 30_000, "r1 owns every partition");
    await produce("dc1", topic, batch(100));
    await out.waitForCount(200, 30_000);
    expect(new Set(out.records.map((x) => x.value?.toString())).size).to.equal(200);
  });

  it("at-least-once: a rebalance commits the acknowledged positions first, so a partition handed to another member is not copied again", async () => {
    const topic = randomTopic("rebal");
    await createTopic("dc1", topic, 2);
    const id = randomTopic("rebal");
    const config = await testConfig({
      // No coalesced commit within the test: only the commit at the rebalance can move the positions.
      replicator: { id, commitIntervalMs: 60_000 },
      discovery: { include: [topic] },
      replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
    });
    const r = await startReplicator(config);
    const pipelineId = `dc1/${topic}->dc2/${topic}`;
    const status = async () => (await r.status()).pipelines.find((p) => p.id === pipelineId);
    const batch = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({ value: `m${from + i}`, partition: (from + i) % 2 }));
    await produce("dc1", topic, batch(0, 10));
    const out = await collect("dc2", topic);
    await out.waitForCount(10, 30_000);
    await waitFor(async () => (await status())?.records === 10, 10_000, "10 records acknowledged");

    const groupId = `lp.replicator.${id}.dc1.dc2`; // one group per datacenter pair
    const admin = (await kafkaOf("dc1")).admin();
    await admin.connect();
    const committed = async () => {
      const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return (t?.partitions ?? []).map((p) => `${p.partition}:${p.offset}`).sort();
    };
    // A second member of the pair's group (it never commits): its join makes the replicator rebalance.
    const intruder = (await kafkaOf("dc1")).consumer({
      groupId,
      sessionTimeout: 6000,
      heartbeatInterval: 500,
    });
    const seen: string[] = [];
    try {
      expect(await committed()).to.deep.equal(["0:-1", "1:-1"]); // acknowledged, not committed yet
      const joined = new Promise<number[]>((resolve) =>
        intruder.on(intruder.events.GROUP_JOIN, (e) => resolve(e.payload.memberAssignment[topic] ?? [])),
      );
      await intruder.connect();
      await intruder.subscribe({ topics: [topic], fromBeginning: true });
      await intruder.run({
        autoCommit: false,
        eachMessage: async ({ message }) => {
          seen.push(message.value?.toString() ?? "");
        },
      });
      expect(await joined).to.have.length(1); // one of the two partitions moved to the intruder
      expect(await committed()).to.deep.equal(["0:5", "1:5"]);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(seen).to.deep.equal([]); // it resumed at the committed end: nothing to read again
    } finally {
      await intruder.disconnect();
      await admin.disconnect();
    }
    await waitFor(async () => (await status())?.assigned.join() === "0,1", 30_000, "both partitions back");
    await produce("dc1", topic, batch(10, 4));
    await out.waitForCount(14, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(out.records.map((x) => x.value?.toString()).sort()).to.deep.equal(
      batch(0, 14)
        .map((m) => m.value)
        .sort(),
    );
    expect((await status())?.records).to.equal(14);
  });

  for (const delivery of ["at-least-once", "exactly-once"] as const) {
    it(`${delivery}, engines 0 and 1 of 2: one group for every topic of the pair, partitions split by (topic hash + partition), every record arrives`, async () => {
      const single = randomTopic("one");
      const triple = randomTopic("three");
      await createTopic("dc1", single, 1);
      await createTopic("dc1", triple, 3);
      const id = randomTopic("engines");
      const config = await testConfig({
        replicator: { id, delivery },
        discovery: { include: [single, triple] },
        replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
      });
      const engines = [
        await startReplicator(config, { engine: { index: 0, count: 2 } }),
        await startReplicator(config, { engine: { index: 1, count: 2 } }),
      ];
      const pipeline = async (r: (typeof engines)[number], topic: string) =>
        (await r.status()).pipelines.find((p) => p.id === `dc1/${topic}->dc2/${topic}`);
      const owned = (topic: string, partitions: number, k: number) =>
        Array.from({ length: partitions }, (_, p) => p).filter((p) => ownerIndex(topic, p, 2) === k);
      await waitFor(
        async () => {
          for (const [k, r] of engines.entries()) {
            const [a, b] = [await pipeline(r, single), await pipeline(r, triple)];
            if (a?.state !== "running" || b?.state !== "running") return false;
            if (a.assigned.join() !== owned(single, 1, k).join()) return false;
            if (b.assigned.join() !== owned(triple, 3, k).join()) return false;
          }
          return true;
        },
        30_000,
        "both pipelines running in both engines, each engine with its own partitions",
      );
      const admin = (await kafkaOf("dc1")).admin();
      await admin.connect();
      try {
        const { groups } = await admin.describeGroups([`lp.replicator.${id}.dc1.dc2`]);
        expect(groups[0]?.members.length, "one member per engine, whatever the topics").to.equal(2);
      } finally {
        await admin.disconnect();
      }
      await produce(
        "dc1",
        single,
        Array.from({ length: 50 }, (_, i) => ({ value: `s${i}` })),
      );
      await produce(
        "dc1",
        triple,
        Array.from({ length: 60 }, (_, i) => ({ value: `t${i}`, partition: i % 3 })),
      );
      const [outSingle, outTriple] = [await collect("dc2", single), await collect("dc2", triple)];
      await outSingle.waitForCount(50, 30_000);
      await outTriple.waitForCount(60, 30_000);
      expect(outSingle.records.map((x) => x.value?.toString())).to.deep.equal(
        Array.from({ length: 50 }, (_, i) => `s${i}`),
      );
      expect(new Set(outTriple.records.map((x) => x.value?.toString())).size).to.equal(60);
    });
  }

  it("leader election: one leader creates targets; when it stops another takes over within seconds", async () => {
    const prefix = randomTopic("lead");
    const config = await testConfig({
      replicator: { id: randomTopic("elect") },
      discovery: { include: [`${prefix}-.*`] },
      replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
    });
    const [r1, r2] = await Promise.all([startReplicator(config), startReplicator(config)]);
    const leaders = async () => [(await r1.status()).leader, (await r2.status()).leader];
    await waitFor(async () => (await leaders()).filter(Boolean).length === 1, 20_000, "exactly one leader");
    const [first, second] = (await leaders())[0] ? [r1, r2] : [r2, r1];
    await createTopic("dc1", `${prefix}-a`);
    await produce("dc1", `${prefix}-a`, [{ value: "a" }]);
    await (await collect("dc2", `${prefix}-a`)).waitForCount(1, 30_000);

    const t0 = Date.now();
    await first.stop();
    await waitFor(async () => (await second.status()).leader, 30_000, "the other replicator elected");
    console.log(`      leader failover after a graceful stop: ${Date.now() - t0} ms`);
    await createTopic("dc1", `${prefix}-b`);
    await produce("dc1", `${prefix}-b`, [{ value: "b" }]);
    const got = await (await collect("dc2", `${prefix}-b`)).waitForCount(1, 30_000);
    expect(got[0]?.value?.toString()).to.equal("b");
  });

  it("admin: /healthz, /status with per-partition offsets and lag, /metrics; an unreachable datacenter is reported", async () => {
    const topic = randomTopic("adm");
    await createTopic("dc1", topic, 2);
    await produce("dc1", topic, [
      { value: "a", partition: 0 },
      { value: "b", partition: 1 },
      { value: "c", partition: 1 },
    ]);
    const set = await getKafka();
    const config = parseConfig({
      datacenters: [
        ...set.clusters.map((c) => ({ name: c.name, brokers: c.brokers })),
        // Nothing listens there: a closed port on loopback.
        { name: "dc9", brokers: [`127.0.0.1:${await closedPort()}`], connectionTimeoutMs: 500 },
      ],
      discovery: { intervalMs: 500, include: [topic] },
      replication: [
        { model: "full", sources: ["dc1"], destinations: ["dc2"] },
        { model: "full", sources: ["dc9"], destinations: ["dc2"] },
      ],
    });
    const r = await startReplicator(config);
    const admin = await startAdminServer(r, {
      host: "127.0.0.1",
      port: 0,
      logger: pino({ level: "silent" }),
    });
    try {
      await (await collect("dc2", topic)).waitForCount(3);
      const health = await fetch(`${admin.url}/healthz`);
      expect(health.status).to.equal(503);
      const healthBody = (await health.json()) as {
        status: string;
        datacenters: { name: string; reachable: boolean }[];
      };
      expect(healthBody.status).to.equal("degraded");
      expect(healthBody.datacenters.find((d) => d.name === "dc9")?.reachable).to.equal(false);
      expect(healthBody.datacenters.find((d) => d.name === "dc1")?.reachable).to.equal(true);

      // committedOffset is what the group holds: committed commitIntervalMs after the acknowledgement.
      await waitFor(
        async () =>
          (await r.status()).pipelines
            .find((x) => x.id === `dc1/${topic}->dc2/${topic}`)
            ?.partitions.every((x) => x.committedOffset !== "-1") === true,
        10_000,
        "acknowledged positions committed",
      );
      const status = (await (await fetch(`${admin.url}/status`)).json()) as ReplicatorStatus;
      const p = status.pipelines.find((x) => x.id === `dc1/${topic}->dc2/${topic}`);
      expect(p?.records).to.equal(3);
      expect(p?.partitions).to.deep.equal([
        { partition: 0, lastReplicatedOffset: "0", committedOffset: "1", lag: 0 },
        { partition: 1, lastReplicatedOffset: "1", committedOffset: "2", lag: 0 },
      ]);
      expect(status.applications).to.deep.include({ datacenter: "dc1", topic, partitions: 2 });

      const metrics = await (await fetch(`${admin.url}/metrics`)).text();
      expect(metrics).to.contain(
        `lp_replicator_records_total{source="dc1",destination="dc2",topic="${topic}"} 3`,
      );
      expect(metrics).to.match(/lp_replicator_replication_latency_seconds_count\{destination="dc2"\} 3/);
      expect(metrics).to.match(/lp_replicator_errors_total\{kind="unreachable"\} [1-9]/);
      expect(metrics).to.contain(
        `lp_replicator_lag_records{pipeline="dc1/${topic}->dc2/${topic}",partition="1"} 0`,
      );
      expect((await fetch(`${admin.url}/nope`)).status).to.equal(404);
    } finally {
      await admin.close();
    }
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
