/**
 * The low and high watermarks of any number of topics in one ListOffsets request per leader broker (kafkajs's
 * admin asks one topic per request: 10,000 topics were 20,000 requests). Through kafkajs's own cluster
 * (./cluster.ts) where its internals may be used, through the admin client otherwise.
 */
import type { Admin, Kafka } from "kafkajs";
import { clusterFactory, type KafkajsCluster, type KafkajsTopicMetadata } from "./cluster.js";
import { partitionResultsActive, withPartitionResults } from "./patches/produce-results.js";

export interface PartitionOffsets {
  partition: number;
  /** The first offset still in the log. */
  low: string;
  /** The end offset: last stable offset (read_committed), as kafkajs's `fetchTopicOffsets`. */
  high: string;
}

/** Partitions asked in one ListOffsets request (about 40 bytes each). */
export const OFFSETS_PER_REQUEST = 5000;
/** Topics read at once through the admin (the fallback without kafkajs's cluster). */
const ADMIN_CONCURRENCY = 32;
const LATEST = -1;
const EARLIEST = -2;
const READ_COMMITTED = 1;
const UNKNOWN_TOPIC = "UNKNOWN_TOPIC_OR_PARTITION";

/** The (topic, partition) pairs of one leader broker, grouped by topic, in requests of at most `limit` partitions. */
export function offsetRequests(
  pairs: readonly { topic: string; partition: number }[],
  limit: number = OFFSETS_PER_REQUEST,
): { topic: string; partitions: number[] }[][] {
  const requests: { topic: string; partitions: number[] }[][] = [];
  let current: { topic: string; partitions: number[] }[] = [];
  let size = 0;
  for (const { topic, partition } of pairs) {
    if (size === limit) {
      requests.push(current);
      current = [];
      size = 0;
    }
    const last = current.at(-1);
    if (last?.topic === topic) last.partitions.push(partition);
    else current.push({ topic, partitions: [partition] });
    size++;
  }
  if (size > 0) requests.push(current);
  return requests;
}

/** The partitions of `metadata` by leader broker; partitions without a leader are left out. */
export function partitionsByLeader(
  metadata: readonly KafkajsTopicMetadata[],
): Map<number, { topic: string; partition: number }[]> {
  const byLeader = new Map<number, { topic: string; partition: number }[]>();
  for (const t of metadata)
    for (const p of t.partitionMetadata) {
      if (p.leader === undefined || p.leader < 0) continue;
      const pairs = byLeader.get(p.leader) ?? [];
      pairs.push({ topic: t.topic, partition: p.partitionId });
      byLeader.set(p.leader, pairs);
    }
  return byLeader;
}

export class ClusterReader {
  private connecting?: Promise<void>;

  private constructor(
    private readonly admin: Admin,
    private readonly cluster: KafkajsCluster | undefined,
  ) {}

  /**
   * A reader on `kafka`'s brokers; `admin` (connected by the caller) serves where kafkajs's internals are
   * off limits. The reader's own connections open on first use.
   */
  static create(kafka: Kafka, admin: Admin, env: NodeJS.ProcessEnv = process.env): ClusterReader {
    const factory = clusterFactory(kafka, env);
    return new ClusterReader(admin, factory?.({ allowAutoTopicCreation: false, maxInFlightRequests: null }));
  }

  /** Whether reads go through kafkajs's cluster (batched) rather than the admin (per topic). */
  get batched(): boolean {
    return this.cluster !== undefined;
  }

  /**
   * Low and high watermarks of every partition of `topics`. Topics the cluster does not have are left
   * out, as are partitions without a leader or whose broker answered an error (a leader moving): the
   * caller asks again later.
   */
  async offsets(topics: readonly string[]): Promise<Map<string, PartitionOffsets[]>> {
    const result = new Map<string, PartitionOffsets[]>();
    if (topics.length === 0) return result;
    if (!this.cluster) {
      // kafkajs retries a topic it does not find for seconds: only topics the cluster has are asked.
      const existing = new Set(await this.admin.listTopics());
      const asked = topics.filter((t) => existing.has(t));
      for (let i = 0; i < asked.length; i += ADMIN_CONCURRENCY) {
        await Promise.all(
          asked.slice(i, i + ADMIN_CONCURRENCY).map(async (topic) => {
            const offsets = await this.admin.fetchTopicOffsets(topic).catch(() => undefined);
            if (offsets)
              result.set(
                topic,
                offsets
                  .map(({ partition, low, high }) => ({ partition, low, high }))
                  .sort((a, b) => a.partition - b.partition),
              );
          }),
        );
      }
      return result;
    }
    const byLeader = partitionsByLeader(await this.metadataOf(topics));
    const [high, low] = await Promise.all([
      this.askLeaders(byLeader, LATEST),
      this.askLeaders(byLeader, EARLIEST),
    ]);
    for (const [key, end] of high) {
      const start = low.get(key);
      if (start === undefined) continue;
      const [topic, partition] = splitKey(key);
      const list = result.get(topic) ?? [];
      list.push({ partition, low: start, high: end });
      result.set(topic, list);
    }
    for (const list of result.values()) list.sort((a, b) => a.partition - b.partition);
    return result;
  }

  /**
   * Which of `topics` take records now, with their partition counts: every partition has a leader that
   * answers for it. A topic created a moment ago is listed, even with a leader, seconds before its
   * broker has set up its log and stops answering NOT_LEADER_OR_FOLLOWER (about 10 ms per partition on a
   * disk, fsyncs; docs/bench.md). Unknown topics are left out (the metadata of every topic is read, so
   * no request names one the broker does not know: kafkajs logs each such answer as an error).
   */
  async writable(topics: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (topics.length === 0) return out;
    if (!this.cluster) {
      // kafkajs's fetchTopicOffsets fails for a topic unless every partition answered.
      for (const [topic, offsets] of await this.offsets(topics)) out.set(topic, offsets.length);
      return out;
    }
    const asked = new Set(topics);
    const metadata = (await this.metadata([])).filter(
      (t) =>
        asked.has(t.topic) &&
        t.partitionMetadata.length > 0 &&
        t.partitionMetadata.every((p) => p.leader !== undefined && p.leader >= 0),
    );
    const answered = await this.askLeaders(partitionsByLeader(metadata), LATEST);
    for (const t of metadata)
      if (t.partitionMetadata.every((p) => answered.has(`${t.topic}\u0000${p.partitionId}`)))
        out.set(t.topic, t.partitionMetadata.length);
    return out;
  }

  /** The offsets at `timestamp` of every partition in `byLeader`, in requests of OFFSETS_PER_REQUEST per leader. */
  private async askLeaders(
    byLeader: ReadonlyMap<number, { topic: string; partition: number }[]>,
    timestamp: number,
  ): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    await Promise.all(
      [...byLeader].flatMap(([leader, pairs]) =>
        offsetRequests(pairs).map(async (request) => {
          for (const [key, offset] of await this.listOffsets(leader, request, timestamp))
            out.set(key, offset);
        }),
      ),
    );
    return out;
  }

  async disconnect(): Promise<void> {
    if (!this.connecting) return;
    this.connecting = undefined;
    await this.cluster?.disconnect();
  }

  private async connected(): Promise<KafkajsCluster> {
    const cluster = this.cluster!;
    this.connecting ??= cluster.connect().catch((err: unknown) => {
      this.connecting = undefined;
      throw err;
    });
    await this.connecting;
    return cluster;
  }

  private async metadata(topics: string[]): Promise<KafkajsTopicMetadata[]> {
    return (await (await this.connected()).metadata({ topics })).topicMetadata;
  }

  /** Metadata of `topics`; one of them missing → every topic's, filtered (the broker refuses the whole request). */
  private async metadataOf(topics: readonly string[]): Promise<KafkajsTopicMetadata[]> {
    try {
      return await this.metadata([...topics]);
    } catch (err) {
      if ((err as { type?: unknown }).type !== UNKNOWN_TOPIC) throw err;
      const asked = new Set(topics);
      return (await this.metadata([])).filter((t) => asked.has(t.topic));
    }
  }

  /**
   * One ListOffsets request; keys are `topic\0partition`, partitions that answered an error (a leader
   * moving, a topic not set up yet or deleted a moment ago) are left out. With the per-partition results
   * patch each partition answers on its own; without it kafkajs throws on the first error, and the
   * request is asked again in halves until only the failing topics are left out.
   */
  private async listOffsets(
    leader: number,
    request: { topic: string; partitions: number[] }[],
    timestamp: number,
  ): Promise<Map<string, string>> {
    const cluster = await this.connected();
    const broker = await cluster.findBroker({ nodeId: String(leader) });
    const perPartition = partitionResultsActive();
    const out = new Map<string, string>();
    const ask = async (topics: typeof request): Promise<void> => {
      try {
        const asked = topics.map(({ topic, partitions }) => ({
          topic,
          partitions: partitions.map((partition) => ({ partition, timestamp })),
        }));
        const { responses } = await broker.listOffsets({
          isolationLevel: READ_COMMITTED,
          topics: perPartition ? withPartitionResults(asked) : asked,
        });
        for (const r of responses)
          for (const p of r.partitions)
            if (p.errorCode === 0) out.set(`${r.topic}\u0000${p.partition}`, p.offset);
      } catch (err) {
        // A broker that does not answer fails the whole read; an error of some partitions does not.
        if ((err as { name?: unknown }).name !== "KafkaJSProtocolError") throw err;
        if (topics.length === 1) return;
        const half = Math.ceil(topics.length / 2);
        await Promise.all([ask(topics.slice(0, half)), ask(topics.slice(half))]);
      }
    };
    await ask(request);
    return out;
  }
}

function splitKey(key: string): [string, number] {
  const i = key.lastIndexOf("\u0000");
  return [key.slice(0, i), Number(key.slice(i + 1))];
}
