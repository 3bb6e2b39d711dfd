/**
 * Measures the replicator on real local Kafka (two datacenters from the launcher, or LP_BENCH_BROKERS):
 * discovery latency (topic created after start → first record in the destination, default 1 s discovery
 * interval) and the throughput of one pipeline (a pre-filled topic copied dc1 → dc2).
 *
 *   node --import tsx replicator/bench.ts [--records 50000] [--size 200] [--partitions 3] [--delivery exactly-once] [--sasl-ssl]
 *
 * `--sasl-ssl`: both datacenters on SASL_SSL only (SCRAM-SHA-512), the replicator and the bench's own
 * clients connect with each cluster's settings (what TLS and SASL cost).
 */
import { parseArgs } from "node:util";
import { clientSecurityConfig, startKafkaClusters } from "../launchers/kafka.js";
import { createKafka, SILENT_LOGGER } from "../kafka/client.js";
import { kafkaSecuritySchema, resolveKafkaSecurity } from "../kafka/security.js";
import { parseConfig } from "./config.js";
import { Replicator } from "./engine.js";
import { sleep } from "../common/time.js";
import { installKafkajsPatches } from "../kafka/patches/index.js";
import { createLogger } from "../common/log.js";

const { values } = parseArgs({
  options: {
    records: { type: "string", default: "50000" },
    size: { type: "string", default: "200" },
    partitions: { type: "string", default: "3" },
    delivery: { type: "string", default: "at-least-once" },
    rounds: { type: "string", default: "3" },
    "sasl-ssl": { type: "boolean", default: false },
  },
});
const records = Number(values.records);
const size = Number(values.size);
const partitions = Number(values.partitions);
const rounds = Number(values.rounds);

// A process entry: the engines run patched, as under replicator/cli.ts.
installKafkajsPatches();
const set = await startKafkaClusters({
  names: ["dc1", "dc2"],
  ...(values["sasl-ssl"] ? { security: "sasl_ssl" as const } : {}),
});
const securityOf = (dc: string) => clientSecurityConfig(set.clusters.find((c) => c.name === dc)?.security);
const logger = createLogger({ level: "warn" });
const kafka = (dc: string) => {
  const security = securityOf(dc);
  return createKafka(
    {
      clientId: `bench-${dc}`,
      brokers: set.clusters.find((c) => c.name === dc)!.brokers,
      security: resolveKafkaSecurity(security && kafkaSecuritySchema.parse(security), dc),
    },
    SILENT_LOGGER,
  );
};
const admin1 = kafka("dc1").admin();
const admin2 = kafka("dc2").admin();
await Promise.all([admin1.connect(), admin2.connect()]);
const total = async (topic: string) => {
  if (!(await admin2.listTopics()).includes(topic)) return 0;
  return (await admin2.fetchTopicOffsets(topic)).reduce((n, o) => n + Number(o.high), 0);
};
const until = async (check: () => Promise<boolean>) => {
  // A just-created destination topic may answer NOT_LEADER for a moment: that counts as "not yet".
  while (!(await check().catch(() => false))) await sleep(10);
};
const config = (include: string) =>
  parseConfig({
    replicator: { id: `bench-${Date.now()}`, delivery: values.delivery },
    datacenters: set.clusters.map((c) => ({
      name: c.name,
      brokers: c.brokers,
      ...(c.security ? { security: clientSecurityConfig(c.security) } : {}),
    })),
    discovery: { include: [include] },
    replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
  });
const producer = kafka("dc1").producer({ allowAutoTopicCreation: false });
await producer.connect();

try {
  // 1. Discovery latency, default discovery interval (1 s).
  const run = Date.now().toString(36);
  const r1 = new Replicator(config(`lat-${run}-.*`), { logger });
  await r1.start();
  const latencies: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const topic = `lat-${run}-${i}`;
    const t0 = Date.now();
    await admin1.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
    await producer.send({ topic, acks: -1, messages: [{ value: "x" }] });
    await until(async () => (await total(topic)) >= 1);
    latencies.push(Date.now() - t0);
  }
  await r1.stop();

  // 2. Throughput of one pipeline over a pre-filled topic.
  const topic = `tput-${run}`;
  await admin1.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions }] });
  const value = Buffer.alloc(size, 120);
  for (let i = 0; i < records; i += 2000) {
    const n = Math.min(2000, records - i);
    await producer.send({
      topic,
      acks: -1,
      messages: Array.from({ length: n }, (_, j) => ({ key: `k${i + j}`, value })),
    });
  }
  const r2 = new Replicator(config(topic), { logger });
  const started = Date.now();
  await r2.start();
  // Counted by the replicator after the destination acknowledged (or the transaction committed); the
  // destination's high watermark would also count transaction markers in exactly-once mode.
  const replicated = async () => (await r2.status()).pipelines.reduce((n, p) => n + p.records, 0);
  await until(async () => (await replicated()) > 0);
  const first = Date.now();
  await until(async () => (await replicated()) >= records);
  const done = Date.now();
  await r2.stop();
  const sorted = [...latencies].sort((a, b) => a - b);
  console.log(
    JSON.stringify(
      {
        discoveryLatencyMs: { samples: latencies, median: sorted[Math.floor(sorted.length / 2)] },
        throughput: {
          delivery: values.delivery,
          security: values["sasl-ssl"] ? "SASL_SSL scram-sha-512" : "PLAINTEXT",
          records,
          valueBytes: size,
          partitions,
          firstRecordAfterStartMs: first - started,
          copyMs: done - first,
          recordsPerSecond: Math.round(records / ((done - first) / 1000)),
          recordsPerSecondIncludingStartup: Math.round(records / ((done - started) / 1000)),
        },
      },
      null,
      2,
    ),
  );
} finally {
  await producer.disconnect();
  await Promise.all([admin1.disconnect(), admin2.disconnect()]);
  await set.stop();
}
