/**
 * DirectCluster (kafka/direct-producer.ts): the senders of many target topics share one kafkajs cluster,
 * so the connections to a broker do not grow with the topics. A real broker (dc1 of the shared infra);
 * connections counted from /proc like the benchmark does.
 */
import { expect } from "chai";
import kafkajs from "kafkajs";
import { tcpConnections } from "../../bench/lib/proc.js";
import { DirectCluster, DirectProducer } from "../../kafka/direct-producer.js";
import { getKafka, randomTopic } from "../fixtures/infra.js";

describe("DirectCluster: one set of connections for the senders of many topics", function () {
  this.timeout(60_000);

  it("20 topics' senders share the connections; each delivers; the last disconnect closes them", async () => {
    const dc = (await getKafka()).clusters[0]!;
    const ports = new Set(dc.brokers.map((b) => Number(b.split(":").at(-1))));
    const kafka = new kafkajs.Kafka({
      clientId: "direct-cluster-test",
      brokers: dc.brokers,
      logLevel: kafkajs.logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    const topics = Array.from({ length: 20 }, () => randomTopic("dcl"));
    await admin.createTopics({
      waitForLeaders: true,
      topics: topics.map((topic) => ({ topic, numPartitions: 1 })),
    });
    const baseline = tcpConnections(process.pid, ports);

    const shared = DirectCluster.create(kafka)!;
    expect(shared, "kafkajs internals available").to.be.instanceOf(DirectCluster);
    const senders = topics.map((t) => shared.producer(t, { maxInFlightRequests: 2 }));
    await Promise.all(senders.map((s) => s.connect()));
    await Promise.all(senders.map((s, i) => s.send(0, [{ value: Buffer.from(`v${i}`) }])));
    const sharedConnections = tcpConnections(process.pid, ports) - baseline;

    // The same with a cluster per topic, for comparison.
    const own = topics.slice(0, 5).map((t) => DirectProducer.create(kafka, t, { maxInFlightRequests: 2 })!);
    await Promise.all(own.map((s) => s.connect()));
    await Promise.all(own.map((s) => s.send(0, [{ value: Buffer.from("own") }])));
    const ownConnections = tcpConnections(process.pid, ports) - baseline - sharedConnections;
    await Promise.all(own.map((s) => s.disconnect()));
    console.log(
      `      20 topics on one DirectCluster: ${sharedConnections} connections; 5 topics with their own: ${ownConnections}`,
    );
    expect(sharedConnections).to.be.within(1, 2);
    expect(ownConnections).to.be.at.least(5);

    // One sender leaving keeps the cluster for the others.
    await senders[0]!.disconnect();
    await senders[1]!.send(0, [{ value: Buffer.from("after") }]);
    await Promise.all(senders.slice(1).map((s) => s.disconnect()));
    await new Promise((r) => setTimeout(r, 200));
    expect(tcpConnections(process.pid, ports) - baseline, "all closed").to.equal(0);

    const offsets = await Promise.all(topics.map((t) => admin.fetchTopicOffsets(t)));
    expect(offsets.map((o) => Number(o[0]!.high))).to.deep.equal(
      topics.map((_, i) => (i === 1 ? 3 : i < 5 ? 2 : 1)),
    );
    await admin.deleteTopics({ topics });
    await admin.disconnect();
  });
});
