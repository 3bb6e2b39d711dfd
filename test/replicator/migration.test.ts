/**
 * Upgrading from one consumer group per pipeline to one per datacenter pair (replicator/engine/migration.ts),
 * against real Kafka: a partition without a position in the pair's group resumes at the position its
 * pipeline's old group holds — in the source for at-least-once, in the destination for exactly-once —
 * so nothing replicated before the upgrade is copied again.
 */
import { expect } from "chai";
import { randomTopic } from "../fixtures/infra.js";
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

describe("replicator upgrade from per-pipeline groups (real Kafka)", function () {
  this.timeout(60_000);

  afterEach(async () => {
    await stopReplicators();
    await stopCollectors();
  });

  for (const delivery of ["at-least-once", "exactly-once"] as const) {
    it(`${delivery}: a partition without a position in the pair's group resumes at its old group's position`, async () => {
      const topic = randomTopic("upgrade");
      await createTopic("dc1", topic, 2);
      await produce(
        "dc1",
        topic,
        Array.from({ length: 20 }, (_, i) => ({ value: `m${i}`, partition: i % 2 })),
      );
      const id = randomTopic("upgraded");
      // What the version before wrote: partition 0 replicated up to offset 6, partition 1 not at all.
      const legacy = `lp.replicator.${id}.dc1.${topic}.dc2`;
      const holder = delivery === "exactly-once" ? "dc2" : "dc1";
      const position = { topic, partitions: [{ partition: 0, offset: "6" }] };
      if (delivery === "exactly-once") {
        await createTopic("dc2", topic, 2); // the target the version before created
        // As the version before wrote it: a transaction's positions for the source topic, in the destination.
        const producer = (await kafkaOf("dc2")).producer({
          transactionalId: `${legacy}.0`,
          idempotent: true,
          maxInFlightRequests: 1,
        });
        await producer.connect();
        try {
          const txn = await producer.transaction();
          await txn.sendOffsets({ consumerGroupId: legacy, topics: [position] });
          await txn.commit();
        } finally {
          await producer.disconnect();
        }
      } else {
        const admin = (await kafkaOf("dc1")).admin();
        await admin.connect();
        try {
          await admin.setOffsets({ groupId: legacy, ...position });
        } finally {
          await admin.disconnect();
        }
      }
      await startReplicator(
        await testConfig({
          replicator: { id, delivery },
          discovery: { include: [topic] },
          replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
        }),
      );
      const out = await collect("dc2", topic);
      await out.waitForCount(14, 30_000);
      await new Promise((resolve) => setTimeout(resolve, 1500)); // a re-read would show by now
      const values = (partition: number) =>
        out.records.filter((r) => r.partition === partition).map((r) => r.value?.toString());
      expect(values(0)).to.deep.equal(["m12", "m14", "m16", "m18"]); // offsets 6..9 of partition 0
      expect(values(1)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `m${2 * i + 1}`));
      // The pair's group now holds the positions; the old group is left as it was.
      const check = (await kafkaOf(holder)).admin();
      await check.connect();
      try {
        await waitFor(
          async () => {
            const [t] = await check.fetchOffsets({ groupId: `lp.replicator.${id}.dc1.dc2`, topics: [topic] });
            return (
              (t?.partitions ?? [])
                .map((p) => `${p.partition}:${p.offset}`)
                .sort()
                .join() === "0:10,1:10"
            );
          },
          10_000,
          "the pair's group at the end of both partitions",
        );
      } finally {
        await check.disconnect();
      }
    });
  }
});
