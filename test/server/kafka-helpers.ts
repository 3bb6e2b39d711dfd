/** Kafka helpers of the events and replica tests: read a topic from the start, find a closed port. */
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { Kafka, logLevel, type Consumer, type Producer } from "kafkajs";
import type { LicenseEvent } from "../../server/events.js";

export interface ReadRecord {
  key: string;
  partition: number;
  offset: string;
  event: LicenseEvent;
}

/** A port on 127.0.0.1 that nothing listens on (bound once, then closed). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function client(brokers: string[]): Kafka {
  return new Kafka({ clientId: "license-events-test", brokers, logLevel: logLevel.NOTHING });
}

/**
 * Reads `topic` from the beginning (read_committed, a fresh group) until `until(records)` holds or
 * `timeoutMs` passes; returns everything read.
 */
export async function readTopic(
  brokers: string[],
  topic: string,
  until: (records: ReadRecord[]) => boolean,
  timeoutMs = 60_000,
): Promise<ReadRecord[]> {
  const consumer: Consumer = client(brokers).consumer({
    groupId: `test-${randomBytes(6).toString("hex")}`,
    readUncommitted: false,
    allowAutoTopicCreation: false,
  });
  const records: ReadRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        records.push({
          key: message.key!.toString(),
          partition,
          offset: message.offset,
          event: JSON.parse(message.value!.toString()) as LicenseEvent,
        });
        if (until(records)) resolveDone();
        return Promise.resolve();
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    // records arriving after the condition held are kept too: a duplicate would show up in them
    await new Promise((resolve) => setTimeout(resolve, 500));
    return records;
  } finally {
    await consumer.disconnect();
  }
}

/** Partitions of a topic. */
export async function partitionCount(brokers: string[], topic: string): Promise<number> {
  const admin = client(brokers).admin();
  await admin.connect();
  try {
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    return meta.topics[0]!.partitions.length;
  } finally {
    await admin.disconnect();
  }
}

/**
 * Copies `from` in the source cluster to `to` in the target cluster (what a replicator does), keeping
 * keys, values, headers and partitions; returns a stop function.
 */
export async function copyTopic(
  source: string[],
  from: string,
  target: string[],
  to: string,
): Promise<{ copied(): number; stop(): Promise<void> }> {
  const admin = client(target).admin();
  await admin.connect();
  const partitions = await partitionCount(source, from);
  await admin.createTopics({ topics: [{ topic: to, numPartitions: partitions }], waitForLeaders: true });
  await admin.disconnect();
  const producer: Producer = client(target).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const consumer = client(source).consumer({
    groupId: `copy-${randomBytes(6).toString("hex")}`,
    readUncommitted: false,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [from], fromBeginning: true });
  let copied = 0;
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      await producer.send({
        topic: to,
        acks: -1,
        messages: [{ partition, key: message.key, value: message.value, headers: message.headers }],
      });
      copied++;
    },
  });
  return {
    copied: () => copied,
    async stop() {
      await consumer.disconnect();
      await producer.disconnect();
    },
  };
}
