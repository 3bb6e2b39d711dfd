/**
 * Topic metadata looked up by name in constant time, for kafkajs 2.2.4 clients that know thousands of
 * topics.
 *
 * kafkajs keeps a cluster's metadata as an array of topics and finds a topic by a linear scan:
 * `Cluster.findTopicPartitionMetadata` (`topicMetadata.find`) and `BrokerPool.refreshMetadataIfNecessary`
 * (`every` target topic, `some` known topic). A consumer runs both for every subscribed topic on every
 * fetch (the stale-assignment check, the read-replica split, the refresh check), so one consumer of
 * 10,000 topics did some 10^8 string comparisons per fetch: its engine thread was busy for seconds at a
 * time, missed its heartbeats, and the pair's group rebalanced over and over (docs/bench.md, session 10).
 *
 * The patched methods read an index built once per metadata response (a WeakMap keyed by the response
 * kafkajs stores, so a refresh, which stores a new one, gets a new index); the answers are kafkajs's.
 * Installed process-wide by patching the two prototypes, only for the verified kafkajs version;
 * `LP_KAFKAJS_METADATA_INDEX=kafkajs` keeps kafkajs's own methods.
 */
import { createRequire } from "node:module";
import { installPatch, type PatchState } from "../version.js";

const require = createRequire(import.meta.url);
const CLUSTER = "kafkajs/src/cluster/index.js";
const BROKER_POOL = "kafkajs/src/cluster/brokerPool.js";

interface TopicMetadata {
  topic: string;
  partitionMetadata: unknown[];
}
interface Metadata {
  topicMetadata?: TopicMetadata[];
}
interface BrokerPoolLike {
  metadata: Metadata | null;
  metadataExpireAt: number | null;
  refreshMetadata(topics: string[]): Promise<void>;
  refreshMetadataIfNecessary(topics: string[]): Promise<void>;
}
interface ClusterLike {
  brokerPool: BrokerPoolLike;
  findTopicPartitionMetadata(topic: string): unknown[];
}

const indexes = new WeakMap<TopicMetadata[], Map<string, TopicMetadata>>();

/** Topic name → its metadata, built once per metadata response. */
export function topicIndex(topicMetadata: TopicMetadata[]): Map<string, TopicMetadata> {
  let index = indexes.get(topicMetadata);
  if (!index) {
    index = new Map();
    // kafkajs's `find` takes the first of a name; so does the index.
    for (const t of topicMetadata) if (!index.has(t.topic)) index.set(t.topic, t);
    indexes.set(topicMetadata, index);
  }
  return index;
}

/** Whether a refresh is due: kafkajs's rule (no metadata, expired, a topic unknown), the lookup indexed. */
export function metadataRefreshDue(
  metadata: Metadata | null,
  expireAt: number | null,
  topics: readonly string[],
  now: number,
): boolean {
  if (metadata == null || expireAt == null || now > expireAt) return true;
  const index = topicIndex(metadata.topicMetadata ?? []);
  return !topics.every((topic) => index.has(topic));
}

let installed: PatchState | undefined;

/** Patches kafkajs's Cluster and BrokerPool lookups (idempotent); returns whether it is active and why not. */
export function installMetadataIndex(env: NodeJS.ProcessEnv = process.env): PatchState {
  installed ??= installPatch(env, "LP_KAFKAJS_METADATA_INDEX", "kafkajs", () => {
    const Cluster = require(CLUSTER) as { prototype?: Partial<ClusterLike> } | undefined;
    const BrokerPool = require(BROKER_POOL) as { prototype?: Partial<BrokerPoolLike> } | undefined;
    const clusterProto = Cluster?.prototype;
    const poolProto = BrokerPool?.prototype;
    const original = clusterProto?.findTopicPartitionMetadata;
    if (!clusterProto || typeof original !== "function")
      return { active: false, reason: "kafkajs Cluster.findTopicPartitionMetadata not found" };
    if (!poolProto || typeof poolProto.refreshMetadataIfNecessary !== "function")
      return { active: false, reason: "kafkajs BrokerPool.refreshMetadataIfNecessary not found" };
    clusterProto.findTopicPartitionMetadata = function (this: ClusterLike, topic: string) {
      const topicMetadata = this.brokerPool.metadata?.topicMetadata;
      if (!topicMetadata) return original.call(this, topic); // kafkajs's "not loaded" error
      return topicIndex(topicMetadata).get(topic)?.partitionMetadata ?? [];
    };
    poolProto.refreshMetadataIfNecessary = async function (this: BrokerPoolLike, topics: string[]) {
      if (metadataRefreshDue(this.metadata, this.metadataExpireAt, topics, Date.now()))
        return this.refreshMetadata(topics);
    };
    return { active: true };
  });
  return installed;
}
