/**
 * /status against real datacenters: `committedOffset` is what the source group really holds,
 * `lastReplicatedOffset` the last record the destination acknowledged, and lag counts from the committed position.
 */
import { expect } from "chai";
import { randomTopic } from "../../fixtures/infra.js";
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
} from "../helpers.js";

describe("replicator status (real Kafka datacenters)", function () {
  this.timeout(90_000);

  afterEach(async () => {
    await stopCollectors();
    await stopReplicators();
  });

  it("at-least-once: committedOffset is the group's committed position, lastReplicatedOffset the acknowledged one, lag from the committed one", async () => {
    const topic = randomTopic("status");
    await createTopic("dc1", topic, 1);
    const id = randomTopic("status");
    const r = await startReplicator(
      await testConfig({
        // No coalesced commit within the test: the group holds no position while the records are acknowledged.
        replicator: { id, commitIntervalMs: 60_000 },
        discovery: { include: [topic] },
        replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
      }),
    );
    await produce("dc1", topic, [{ value: "a" }, { value: "b" }, { value: "c" }]);
    await (await collect("dc2", topic)).waitForCount(3);
    const pipelineId = `dc1/${topic}->dc2/${topic}`;
    await waitFor(
      async () => (await r.status()).pipelines.find((p) => p.id === pipelineId)?.records === 3,
      20_000,
      "3 records acknowledged",
    );
    const admin = (await kafkaOf("dc1")).admin();
    await admin.connect();
    try {
      const groupId = `lp.replicator.${id}.dc1.dc2`;
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const groupOffset = offsets?.partitions.find((p) => p.partition === 0)?.offset;
      expect(groupOffset).to.equal("-1"); // nothing committed yet
      const status = await r.status({ lag: true });
      const [partition] = status.pipelines.find((p) => p.id === pipelineId)?.partitions ?? [];
      expect(partition).to.deep.equal({
        partition: 0,
        lastReplicatedOffset: "2",
        committedOffset: "-1",
        lag: 3,
      });
    } finally {
      await admin.disconnect();
    }
  });
});
