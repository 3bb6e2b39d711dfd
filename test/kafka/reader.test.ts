/**
 * ClusterReader (kafka/reader.ts): watermarks of many topics in one ListOffsets request per leader.
 * The request slicing is pure; the reads run against a real broker (dc1 of the shared infra), batched
 * and through the admin fallback, which must agree.
 */
import { expect } from "chai";
import kafkajs from "kafkajs";
import { ClusterReader, offsetRequests, partitionsByLeader } from "../../kafka/reader.js";
import { getKafka, randomTopic } from "../fixtures/infra.js";

describe("ClusterReader: watermarks of many topics at once", function () {
  this.timeout(60_000);

  it("slices a leader's partitions into requests of at most `limit`, grouped by topic", () => {
    const pairs = [
      { topic: "a", partition: 0 },
      { topic: "a", partition: 1 },
      { topic: "a", partition: 2 },
      { topic: "b", partition: 0 },
      { topic: "c", partition: 4 },
    ];
    expect(offsetRequests(pairs, 2)).to.deep.equal([
      [{ topic: "a", partitions: [0, 1] }],
      [
        { topic: "a", partitions: [2] },
        { topic: "b", partitions: [0] },
      ],
      [{ topic: "c", partitions: [4] }],
    ]);
    expect(offsetRequests(pairs)).to.deep.equal([
      [
        { topic: "a", partitions: [0, 1, 2] },
        { topic: "b", partitions: [0] },
        { topic: "c", partitions: [4] },
      ],
    ]);
    expect(offsetRequests([])).to.deep.equal([]);
  });

  it("groups partitions by leader broker and leaves out partitions without one", () => {
    const p = (partitionId: number, leader: number) => ({ partitionId, leader, partitionErrorCode: 0 });
    const byLeader = partitionsByLeader([
      { topic: "a", partitionMetadata: [p(0, 1), p(1, 2), p(2, -1)] },
      { topic: "b", partitionMetadata: [p(0, 2)] },
    ]);
    expect(Object.fromEntries(byLeader)).to.deep.equal({
      1: [{ topic: "a", partition: 0 }],
      2: [
        { topic: "a", partition: 1 },
        { topic: "b", partition: 0 },
      ],
    });
  });

  it("reads 60 topics' low and high watermarks and which take records, leaves out a missing topic, and agrees with the admin fallback", async () => {
    const dc = (await getKafka()).clusters[0]!;
    const kafka = new kafkajs.Kafka({
      clientId: "reader-test",
      brokers: dc.brokers,
      logLevel: kafkajs.logLevel.NOTHING,
    });
    const admin = kafka.admin();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await Promise.all([admin.connect(), producer.connect()]);
    const topics = Array.from({ length: 60 }, () => randomTopic("rdr"));
    const batched = ClusterReader.create(kafka, admin);
    const fallback = ClusterReader.create(kafka, admin, { LP_KAFKAJS_PATCHES: "off" });
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: topics.map((topic, i) => ({ topic, numPartitions: 1 + (i % 3) })),
      });
      // Topic i holds i records in its partition 0; the last one is also trimmed to start at 1.
      await producer.sendBatch({
        topicMessages: topics
          .map((topic, i) => ({
            topic,
            messages: Array.from({ length: i }, (_, n) => ({ partition: 0, value: `${n}` })),
          }))
          .filter((t) => t.messages.length > 0),
      });
      const last = topics.at(-1)!;
      await admin.fetchTopicMetadata({ topics: [last] }); // kafkajs's deleteTopicRecords needs its leader known
      await admin.deleteTopicRecords({ topic: last, partitions: [{ partition: 0, offset: "1" }] });

      expect(batched.batched).to.equal(true);
      expect(fallback.batched).to.equal(false);
      const missing = randomTopic("rdr-missing");
      const read = await batched.offsets([...topics, missing]);
      expect(read.has(missing), "a topic the cluster lacks").to.equal(false);
      expect([...read.keys()].sort()).to.deep.equal([...topics].sort());
      topics.forEach((topic, i) => {
        const offsets = read.get(topic)!;
        expect(
          offsets.map((o) => o.partition),
          topic,
        ).to.deep.equal(Array.from({ length: 1 + (i % 3) }, (_, p) => p));
        expect(offsets[0]).to.deep.equal({ partition: 0, low: topic === last ? "1" : "0", high: String(i) });
        for (const o of offsets.slice(1))
          expect(o).to.deep.equal({ partition: o.partition, low: "0", high: "0" });
      });
      const viaAdmin = await fallback.offsets([...topics, missing]);
      expect(Object.fromEntries(viaAdmin)).to.deep.equal(Object.fromEntries(read));

      // Every partition of each topic answers: writable, with its partition count; the missing one not.
      const counts = Object.fromEntries(topics.map((t, i) => [t, 1 + (i % 3)]));
      expect(Object.fromEntries(await batched.writable([...topics, missing]))).to.deep.equal(counts);
      expect(Object.fromEntries(await fallback.writable([...topics, missing]))).to.deep.equal(counts);
    } finally {
      await Promise.all([batched.disconnect(), fallback.disconnect(), producer.disconnect()]);
      await admin.deleteTopics({ topics }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});
