/**
 * The replicator at scale against real Kafka (the CLI as a child process, one engine): 300 topics of one
 * partition are replicated with a number of broker connections that does not grow with the topics (one
 * consumer group per datacenter pair), and a topic created while the 300 replicate arrives within 2 s
 * without any of the others being read again. Speed figures are printed; `npm run bench -- --only scale`
 * measures 10 to 1,000 topics.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Admin } from "kafkajs";
import { tcpConnections } from "../../bench/lib/proc.js";
import { ClusterReader } from "../../kafka/reader.js";
import { getKafka, randomTopic } from "../fixtures/infra.js";
import { killChildren, runCli, running } from "./cli-helpers.js";
import { kafkaOf, waitFor } from "./helpers.js";

const TOPICS = 300;
const RECORDS = 10;
/**
 * The replicator's connections to the two single-broker clusters with one engine: per cluster an admin
 * client, the consumer (bootstrap, broker, coordinator) or the shared sender, the election and registry
 * clients. Measured 8 for 300 topics (3 per topic before: ~900); the bound leaves room, and a model
 * with one consumer per topic exceeds it at 8 topics.
 */
const MAX_CONNECTIONS = 24;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Per topic, its end offset (summed over partitions) in the reader's cluster; topics it lacks are absent. */
async function endOffsets(reader: ClusterReader, topics: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [topic, offsets] of await reader.offsets(topics))
    out.set(
      topic,
      offsets.reduce((sum, o) => sum + Number(o.high), 0),
    );
  return out;
}

/** Creates topics of one partition, then waits until the broker's metadata has every one of them. */
async function createTopics(admin: Admin, topics: string[]): Promise<void> {
  for (let i = 0; i < topics.length; i += 100)
    await admin.createTopics({
      topics: topics.slice(i, i + 100).map((topic) => ({ topic, numPartitions: 1 })),
      waitForLeaders: false,
    });
  // kafkajs's waitForLeaders fails on a topic the metadata does not know yet (UNKNOWN_TOPIC_OR_PARTITION).
  await waitFor(
    () =>
      admin.fetchTopicMetadata({ topics }).then(
        ({ topics: meta }) => meta.every((t) => t.partitions.every((p) => p.leader >= 0)),
        () => false,
      ),
    30_000,
    `${topics.length} topics created`,
  );
}

describe("replicator at scale (real Kafka)", function () {
  this.timeout(240_000);
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "lp-scale-"));
  });

  afterEach(async () => {
    await killChildren();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`${TOPICS} topics × ${RECORDS} records: all arrive over a bounded number of broker connections; a topic added meanwhile arrives within 2 s and no other topic is read again`, async () => {
    const set = await getKafka();
    const prefix = randomTopic("scale");
    const topics = range(TOPICS).map((i) => `${prefix}-${i}`);
    const sourceAdmin = (await kafkaOf("dc1")).admin();
    const destinationAdmin = (await kafkaOf("dc2")).admin();
    const source = ClusterReader.create(await kafkaOf("dc1"), sourceAdmin);
    const destination = ClusterReader.create(await kafkaOf("dc2"), destinationAdmin);
    expect(source.batched, "kafkajs internals available").to.equal(true);
    // Idempotent: kafkajs retries a whole request when some of its partitions fail (new topics' leaders),
    // and would write the others twice.
    const producer = (await kafkaOf("dc1")).producer({ idempotent: true, maxInFlightRequests: 1 });
    await Promise.all([sourceAdmin.connect(), destinationAdmin.connect(), producer.connect()]);
    try {
      await createTopics(sourceAdmin, topics);
      await producer.sendBatch({
        topicMessages: topics.map((topic) => ({
          topic,
          messages: range(RECORDS).map((i) => ({ key: `k${i}`, value: `${topic}:${i}` })),
        })),
      });
      const produced = await endOffsets(source, topics);
      expect(
        topics.filter((t) => produced.get(t) !== RECORDS),
        "topics without their records",
      ).to.deep.equal([]);

      const file = join(dir, "replicator.json");
      writeFileSync(
        file,
        JSON.stringify({
          replicator: { id: randomTopic("scale"), workers: 1 },
          datacenters: set.clusters.map((c) => ({ name: c.name, brokers: c.brokers })),
          discovery: { intervalMs: 500, include: [`${prefix}-.*`] },
          replication: [{ model: "full", sources: ["dc1"], destinations: ["dc2"] }],
        }),
      );
      const ports = new Set(
        set.clusters.flatMap((c) => c.brokers.map((b) => Number(b.slice(b.lastIndexOf(":") + 1)))),
      );
      const started = Date.now();
      const child = runCli(["--config", file]);
      let peak = 0;
      const sampler = setInterval(() => {
        if (child.pid !== undefined) peak = Math.max(peak, tcpConnections(child.pid, ports));
      }, 100);
      try {
        await running(child, 60_000);
        let complete = 0;
        await waitFor(
          async () => {
            const ends = await endOffsets(destination, topics);
            complete = topics.filter((t) => ends.get(t) === RECORDS).length;
            return complete === TOPICS;
          },
          120_000,
          `every one of ${TOPICS} topics complete in dc2 (complete: ${complete})`,
        ).catch((err: Error) => {
          throw new Error(`${err.message}; ${complete} complete at the end`);
        });
        const completeMs = Date.now() - started;

        // A new topic while the others replicate: discovered, and the pair's consumer restarted with it.
        const late = `${prefix}-late`;
        await createTopics(sourceAdmin, [late]);
        await producer.send({ topic: late, messages: [{ value: "late" }] });
        const producedAt = Date.now();
        await waitFor(
          async () => ((await endOffsets(destination, [late])).get(late) ?? 0) >= 1,
          30_000,
          "the late topic's record in dc2",
        );
        const lateMs = Date.now() - producedAt;
        // Late duplicates of the 300 would show by now: at-least-once re-reads would raise their ends.
        await new Promise((resolve) => setTimeout(resolve, 1500));
        const ends = await endOffsets(destination, topics);
        const reread = topics.filter((t) => ends.get(t) !== RECORDS);
        console.log(
          `      ${TOPICS} topics × ${RECORDS}: complete ${completeMs} ms after start, ` +
            `peak ${peak} broker connections; late topic's record ${lateMs} ms after it was produced`,
        );
        expect(reread, "topics read again after the late topic's restart").to.deep.equal([]);
        expect(peak, "broker connections (3 per topic with a consumer per topic)").to.be.within(
          1,
          MAX_CONNECTIONS,
        );
        expect(lateMs, "a new topic's first record in the destination").to.be.at.most(2000);
      } catch (err) {
        // The replicator's last log lines say where it stood.
        const tail = child.output.stdout.split("\n").slice(-40).join("\n");
        throw new Error(`${(err as Error).message}\nreplicator log (last lines):\n${tail}`, { cause: err });
      } finally {
        clearInterval(sampler);
      }
    } finally {
      await Promise.all([
        source.disconnect(),
        destination.disconnect(),
        sourceAdmin.disconnect(),
        destinationAdmin.disconnect(),
        producer.disconnect(),
      ]);
    }
  });
});
