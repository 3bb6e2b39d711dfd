/**
 * Records the destination cannot take, and records kafkajs could not write, against the shared local
 * Kafka datacenters: a refused record stops only its partition (error policy stop) or goes to the
 * dead-letter topic (dead-letter); no record of another partition is sent twice. Header fidelity:
 * null values and order, produced and read back by kcat (a client nobody here wrote) and by kafkajs.
 */
import { expect } from "chai";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import kafkajs, { type Message } from "kafkajs";
import { HEADER_LIST, type HeaderList } from "../../kafka/headers.js";
import { HEADERS } from "../../replicator/policy.js";
import type { Replicator } from "../../replicator/engine.js";
import type { ReplicatorConfig } from "../../replicator/config.js";
import {
  brokersOf,
  collect,
  Collector,
  createTopic,
  kafkaOf,
  produce,
  startReplicator,
  stopCollectors,
  stopReplicators,
  testConfig,
  waitFor,
  type Received,
} from "./helpers.js";

const run = promisify(execFile);
const unique = (prefix: string) => `${prefix}-${randomBytes(5).toString("hex")}`;
const text = (r: Received) => r.value?.toString() ?? "(null)";

async function shrinkTarget(topic: string, maxMessageBytes: number): Promise<void> {
  const admin = (await kafkaOf("dc2")).admin();
  await admin.connect();
  try {
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: kafkajs.ConfigResourceTypes.TOPIC,
          name: topic,
          configEntries: [{ name: "max.message.bytes", value: String(maxMessageBytes) }],
        },
      ],
    });
  } finally {
    await admin.disconnect();
  }
}

/**
 * A 2-partition topic replicated dc1 → dc2; after a warm-up record per partition the target's limit
 * shrinks to 1,500 bytes; then partition 0 gets a1, BIG (5,000 B), a2 and partition 1 gets b1..b5.
 */
async function refusedRecordScenario(options: {
  delivery: "at-least-once" | "exactly-once";
  errorPolicy: "stop" | "dead-letter";
}): Promise<{ replicator: Replicator; topic: string; dest: Collector; config: ReplicatorConfig }> {
  const topic = unique("refuse");
  await createTopic("dc1", topic, 2);
  const config = await testConfig({
    replicator: {
      id: unique("refuse"),
      delivery: options.delivery,
      workers: 1,
      errorPolicy: options.errorPolicy,
    },
    discovery: { include: [`^${topic}$`] },
    replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
  });
  const replicator = await startReplicator(config);
  await replicator.waitForPipeline(`dc1/${topic}->dc2/${topic}`, 30_000);
  const dest = await Collector.start("dc2", topic, { readCommitted: true });
  await produce("dc1", topic, [
    { partition: 0, value: "warm0" },
    { partition: 1, value: "warm1" },
  ]);
  await dest.waitForCount(2, 30_000);
  await shrinkTarget(topic, 1500);
  const p0: Message[] = [
    { partition: 0, value: "a1" },
    { partition: 0, value: Buffer.alloc(5000, 7), headers: { h: "x" } },
    { partition: 0, value: "a2" },
  ];
  const p1: Message[] = [1, 2, 3, 4, 5].map((i) => ({ partition: 1, value: `b${i}` }));
  await produce("dc1", topic, [...p0, ...p1]);
  return { replicator, topic, dest, config };
}

/** Every record of the scenario, each once in the destination (the refused one dead-lettered). */
const EACH_ONCE = { warm0: 1, warm1: 1, a1: 1, a2: 1, b1: 1, b2: 1, b3: 1, b4: 1, b5: 1 };

function counts(records: Received[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) {
    const key = r.value && r.value.length > 100 ? "BIG" : text(r);
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

describe("replicator: records the destination refuses, header fidelity (real Kafka)", function () {
  this.timeout(120_000);
  afterEach(async () => {
    await stopCollectors();
    await stopReplicators();
  });

  for (const delivery of ["at-least-once", "exactly-once"] as const) {
    it(`${delivery}, policy stop: the partition stops at the refused record, /healthz and /status name it; the other partition is not duplicated`, async () => {
      const { replicator, topic, dest, config } = await refusedRecordScenario({
        delivery,
        errorPolicy: "stop",
      });
      const id = `dc1/${topic}->dc2/${topic}`;
      await waitFor(
        async () =>
          (await replicator.status()).pipelines.find((p) => p.id === id)?.partitions[0]?.fault?.state ===
          "stopped",
        60_000,
        "partition 0 stopped",
      );
      await dest.waitForCount(8, 30_000); // warm0, warm1, a1, b1..b5
      await new Promise((r) => setTimeout(r, 3000)); // time for any duplicate to show
      expect(counts(dest.records)).to.deep.equal({
        warm0: 1,
        warm1: 1,
        a1: 1,
        b1: 1,
        b2: 1,
        b3: 1,
        b4: 1,
        b5: 1,
      });
      const status = (await replicator.status()).pipelines.find((p) => p.id === id)!;
      expect(status.partitions[0]!.fault).to.include({
        state: "stopped",
        offset: "2",
        reason: "MESSAGE_TOO_LARGE",
      });
      expect(status.partitions[1]!.fault).to.equal(undefined);
      const health = replicator.health();
      expect(health.ok).to.equal(false);
      expect(health.stopped).to.have.length(1);
      expect(health.stopped![0]).to.include({
        pipeline: id,
        partition: 0,
        offset: "2",
        reason: "MESSAGE_TOO_LARGE",
      });
      const metrics = (await replicator.metricsText()).text;
      expect(metrics).to.match(
        /lp_replicator_records_failed_total\{[^}]*reason="MESSAGE_TOO_LARGE"[^}]*action="stopped"[^}]*\} 1/,
      );
      // the operator switches the rule to dead-letter (hot reload): the record goes there, a2 follows
      replicator.updateConfig({
        ...config,
        replicator: { ...config.replicator, errorPolicy: "dead-letter" },
      });
      const dlq = await collect("dc2", `lp.replicator.dlq.dc1.${topic}`);
      await dlq.waitForCount(1, 60_000);
      await dest.waitForCount(9, 30_000);
      await new Promise((r) => setTimeout(r, 2000));
      expect(counts(dest.records)).to.deep.equal(EACH_ONCE);
      expect(dlq.records).to.have.length(1);
      expect(replicator.health().ok).to.equal(true);
    });

    it(`${delivery}, policy dead-letter: the refused record lands in the dead-letter topic with its headers and the error; the partition goes on`, async () => {
      const { replicator, topic, dest } = await refusedRecordScenario({
        delivery,
        errorPolicy: "dead-letter",
      });
      const dlq = await collect("dc2", `lp.replicator.dlq.dc1.${topic}`);
      const [dead] = await dlq.waitForCount(1, 60_000);
      await dest.waitForCount(9, 30_000); // warm0, warm1, a1, a2, b1..b5
      await new Promise((r) => setTimeout(r, 3000));
      expect(counts(dest.records)).to.deep.equal(EACH_ONCE);
      // a1 before a2 in partition 0 of the destination
      expect(dest.records.filter((r) => r.partition === 0).map(text)).to.deep.equal(["warm0", "a1", "a2"]);
      expect(dlq.records).to.have.length(1);
      expect(dead!.value!.equals(Buffer.alloc(5000, 7))).to.equal(true);
      expect(dead!.headers).to.include({
        h: "x",
        [HEADERS.originDc]: "dc1",
        [HEADERS.originTopic]: topic,
        [HEADERS.originPartition]: "0",
        [HEADERS.originOffset]: "2",
        "lp.error.reason": "MESSAGE_TOO_LARGE",
        "lp.error.target": topic,
      });
      expect(dead!.headers["lp.error.message"]).to.match(/large/i);
      expect(replicator.health().ok).to.equal(true);
      const metrics = (await replicator.metricsText()).text;
      expect(metrics).to.match(/lp_replicator_records_failed_total\{[^}]*action="dead-lettered"[^}]*\} 1/);
    });
  }

  it("a null header value and repeated names, produced by kcat, arrive in order, read back by kcat", async () => {
    const topic = unique("kcat-headers");
    await createTopic("dc1", topic, 2);
    const config = await testConfig({
      replicator: { id: unique("kcat") },
      discovery: { include: [`^${topic}$`] },
      replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
    });
    const replicator = await startReplicator(config);
    await replicator.waitForPipeline(`dc1/${topic}->dc2/${topic}`, 30_000);
    const [src] = await brokersOf("dc1");
    const [dst] = await brokersOf("dc2");
    // partition 0: the record with a null header (-H n); partition 1: two ordinary records
    const produceLine = (partition: string, value: string, headers: string[] = []) =>
      new Promise<void>((resolve, reject) => {
        const args = ["-P", "-b", src!, "-t", topic, "-p", partition, ...headers.flatMap((h) => ["-H", h])];
        const child = execFile("kcat", args, { timeout: 20_000 }, (err) => (err ? reject(err) : resolve()));
        child.stdin!.end(`${value}\n`);
      });
    await produceLine("0", "with-null-header", ["a=1", "b=2", "a=3", "n", "e="]);
    await produceLine("1", "one");
    await produceLine("1", "two");
    const dest = await collect("dc2", topic);
    await dest.waitForCount(3, 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    expect(dest.records.filter((r) => r.partition === 1).map(text)).to.deep.equal(["one", "two"]);
    const { stdout } = await run(
      "kcat",
      ["-C", "-b", dst!, "-t", topic, "-p", "0", "-o", "beginning", "-e", "-J"],
      {
        timeout: 20_000,
      },
    );
    const [line] = stdout.trim().split("\n");
    const read = JSON.parse(line!) as { headers: (string | null)[] };
    expect(read.headers.slice(0, 10)).to.deep.equal(["a", "1", "b", "2", "a", "3", "n", null, "e", ""]);
    expect(read.headers.slice(10).filter((_, i) => i % 2 === 0)).to.deep.equal([
      HEADERS.originDc,
      HEADERS.originTopic,
      HEADERS.originPartition,
      HEADERS.originOffset,
      HEADERS.path,
    ]);
  });

  it("randomised fidelity: null keys and values, empty, binary, null and large header values, thousands of headers, order — byte for byte", async () => {
    const topic = unique("fidelity");
    await createTopic("dc1", topic, 3);
    const config = await testConfig({
      replicator: { id: unique("fidelity") },
      discovery: { include: [`^${topic}$`] },
      replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
    });
    const replicator = await startReplicator(config);
    await replicator.waitForPipeline(`dc1/${topic}->dc2/${topic}`, 30_000);
    let seed = 12345;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => rand(256)));
    const value = (): Buffer | null => [null, Buffer.alloc(0), bytes(1), bytes(300), bytes(20_000)][rand(5)]!;
    const sent: (Message & { [HEADER_LIST]: HeaderList })[] = [];
    for (let i = 0; i < 60; i++) {
      const count = i === 7 ? 3000 : rand(8);
      const list: HeaderList = Array.from({ length: count }, () => {
        const name = ["a", "b", "c", "ключ", "toString", ""][rand(6)]!;
        const v = [null, Buffer.alloc(0), bytes(3), bytes(200)][rand(4)]!;
        return [name, v] as const;
      });
      if (i === 11) (list as [string, Buffer | null][]).push(["large", bytes(100_000)]);
      sent.push({
        partition: rand(3),
        key: rand(3) === 0 ? null : bytes(rand(40)),
        value: value(),
        timestamp: String(1_700_000_000_000 + rand(1_000_000)),
        [HEADER_LIST]: list,
      });
    }
    // kafkajs through the project's encoder (its own cannot write a null header value)
    await produce("dc1", topic, sent);
    const dest = await collect("dc2", topic);
    await dest.waitForCount(sent.length, 60_000);
    for (let partition = 0; partition < 3; partition++) {
      const want = sent.filter((m) => m.partition === partition);
      const got = dest.records.filter((r) => r.partition === partition);
      expect(got.length, `partition ${partition}`).to.equal(want.length);
      got.forEach((r, i) => {
        const m = want[i]!;
        const where = `partition ${partition} record ${i}`;
        expect(r.keyBytes === null ? null : r.keyBytes.toString("hex"), `${where} key`).to.equal(
          m.key === null ? null : (m.key as Buffer).toString("hex"),
        );
        expect(r.value === null ? null : r.value.toString("hex"), `${where} value`).to.equal(
          m.value === null ? null : (m.value as Buffer).toString("hex"),
        );
        expect(r.timestamp, `${where} timestamp`).to.equal(m.timestamp);
        const own = m[HEADER_LIST].map(([n, v]) => [n, v === null ? null : Buffer.from(v).toString("hex")]);
        const arrived = r.headerList.map(([n, v]) => [n, v === null ? null : Buffer.from(v).toString("hex")]);
        expect(arrived.slice(0, own.length), `${where} headers`).to.deep.equal(own);
        expect(
          arrived.slice(own.length).map(([n]) => n),
          `${where} provenance`,
        ).to.deep.equal([
          HEADERS.originDc,
          HEADERS.originTopic,
          HEADERS.originPartition,
          HEADERS.originOffset,
          HEADERS.path,
        ]);
      });
    }
  });
});
