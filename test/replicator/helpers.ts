/** Helpers for replicator integration tests against the shared local Kafka datacenters (dc1, dc2, dc3). */
import kafkajs, { type Consumer, type IHeaders, type Kafka, type Message } from "kafkajs";
import { pino } from "pino";
import { parseConfig, type ReplicatorConfig } from "../../replicator/config.js";
import { Replicator, type ReplicatorOptions } from "../../replicator/engine.js";
import { getKafka } from "../fixtures/infra.js";
import { headerListOf, type HeaderList, type WithHeaderList } from "../../kafka/headers.js";

export interface Received {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  keyBytes: Buffer | null;
  value: Buffer | null;
  timestamp: string;
  headers: Record<string, string>;
  /** The headers in order, null values included (the record decoder patch, kafka/headers.ts). */
  headerList: HeaderList;
}

const clients = new Map<string, Kafka>();

export async function brokersOf(dc: string): Promise<string[]> {
  const set = await getKafka();
  const cluster = set.clusters.find((c) => c.name === dc);
  if (!cluster) throw new Error(`no datacenter ${dc}`);
  return cluster.brokers;
}

export async function kafkaOf(dc: string): Promise<Kafka> {
  let k = clients.get(dc);
  if (!k) {
    k = new kafkajs.Kafka({
      clientId: `test-${dc}`,
      brokers: await brokersOf(dc),
      logLevel: kafkajs.logLevel.NOTHING,
    });
    clients.set(dc, k);
  }
  return k;
}

/** A replicator configuration over the test datacenters, validated by the real schema. */
export async function testConfig(partial: Record<string, unknown>): Promise<ReplicatorConfig> {
  const set = await getKafka();
  return parseConfig({
    datacenters: set.clusters.map((c) => ({ name: c.name, brokers: c.brokers })),
    ...partial,
    discovery: { intervalMs: 500, ...(partial.discovery as object | undefined) },
  });
}

const started: Replicator[] = [];

/** Starts an in-process replicator; `stopReplicators()` (afterEach) stops every one started. */
export async function startReplicator(
  config: ReplicatorConfig,
  options: Pick<ReplicatorOptions, "engine"> = {},
): Promise<Replicator> {
  const logger = pino({ level: process.env.LP_TEST_LOG_LEVEL ?? "warn" });
  const r = new Replicator(config, { logger, ...options });
  started.push(r);
  await r.start();
  return r;
}

export async function stopReplicators(): Promise<void> {
  const all = started.splice(0);
  await Promise.all(all.map((r) => r.stop()));
}

export async function createTopic(
  dc: string,
  topic: string,
  numPartitions = 1,
  configEntries: { name: string; value: string }[] = [],
): Promise<void> {
  const admin = (await kafkaOf(dc)).admin();
  await admin.connect();
  try {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions, configEntries }] });
  } finally {
    await admin.disconnect();
  }
}

export async function produce(dc: string, topic: string, messages: Message[]): Promise<void> {
  const producer = (await kafkaOf(dc)).producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += 500) {
      await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 500) });
    }
  } finally {
    await producer.disconnect();
  }
}

export async function topicExists(dc: string, topic: string): Promise<boolean> {
  const admin = (await kafkaOf(dc)).admin();
  await admin.connect();
  try {
    return (await admin.listTopics()).includes(topic);
  } finally {
    await admin.disconnect();
  }
}

export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue;
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined && first !== null) out[k] = first.toString();
  }
  return out;
}

/** A consumer (fresh group, from the beginning) that collects every record of a topic. */
export class Collector {
  readonly records: Received[] = [];
  private constructor(private readonly consumer: Consumer) {}

  static async start(
    dc: string,
    topic: string,
    options: { readCommitted?: boolean } = {},
  ): Promise<Collector> {
    await waitFor(() => topicExists(dc, topic), 20_000, `topic ${topic} in ${dc}`);
    const consumer = (await kafkaOf(dc)).consumer({
      groupId: `test-collector-${Math.random().toString(36).slice(2)}`,
      sessionTimeout: 6000,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 100,
      readUncommitted: !(options.readCommitted ?? true),
    });
    const c = new Collector(consumer);
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic: t, partition, message }) => {
        c.records.push({
          topic: t,
          partition,
          offset: message.offset,
          key: message.key?.toString() ?? null,
          keyBytes: message.key,
          value: message.value,
          timestamp: message.timestamp,
          headers: headersToStrings(message.headers),
          headerList: headerListOf(message as WithHeaderList),
        });
      },
    });
    return c;
  }

  async waitForCount(n: number, timeoutMs = 20_000): Promise<Received[]> {
    await waitFor(() => this.records.length >= n, timeoutMs, `${n} records (have ${this.records.length})`);
    return this.records;
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}

const collectors: Collector[] = [];
export async function collect(dc: string, topic: string): Promise<Collector> {
  const c = await Collector.start(dc, topic);
  collectors.push(c);
  return c;
}
export async function stopCollectors(): Promise<void> {
  await Promise.all(collectors.splice(0).map((c) => c.stop()));
}

export async function disconnectClients(): Promise<void> {
  clients.clear();
}
