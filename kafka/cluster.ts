/**
 * kafkajs's own cluster (connections, SSL/SASL, metadata) built from a client, for the few places that
 * talk to brokers below kafkajs's producer and admin layers (the direct sender, batched end offsets).
 * The factory is a kafkajs internal: only under the version guard (./version.ts).
 */
import type { Kafka } from "kafkajs";
import { patchesRefused } from "./version.js";

export interface ListOffsetsPartition {
  partition: number;
  errorCode: number;
  offset: string;
}
export interface KafkajsBroker {
  produce(args: {
    acks: number;
    timeout: number;
    compression: number;
    topicData: unknown[];
  }): Promise<unknown>;
  listOffsets(args: {
    isolationLevel: number;
    topics: { topic: string; partitions: { partition: number; timestamp: number }[] }[];
  }): Promise<{ responses: { topic: string; partitions: ListOffsetsPartition[] }[] }>;
}
export interface KafkajsTopicMetadata {
  topic: string;
  partitionMetadata: { partitionId: number; leader: number; partitionErrorCode: number }[];
}
export interface KafkajsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  addMultipleTargetTopics(topics: string[]): Promise<void>;
  refreshMetadata(): Promise<void>;
  refreshMetadataIfNecessary(): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(args: { nodeId: string }): Promise<KafkajsBroker>;
  /** Metadata of `topics`, or of every topic when empty; does not change the cluster's target topics. */
  metadata(args: { topics: string[] }): Promise<{ topicMetadata: KafkajsTopicMetadata[] }>;
}
export type CreateCluster = (options: {
  metadataMaxAge?: number;
  allowAutoTopicCreation?: boolean;
  maxInFlightRequests?: number | null;
}) => KafkajsCluster;

/**
 * kafkajs's cluster factory of this client, or undefined when kafkajs's internals are off limits
 * (another kafkajs version, `LP_KAFKAJS_PATCHES=off`) or this kafkajs does not expose it.
 */
export function clusterFactory(
  kafka: Kafka,
  env: NodeJS.ProcessEnv = process.env,
): CreateCluster | undefined {
  if (patchesRefused(env) !== undefined) return undefined;
  const symbol = Object.getOwnPropertySymbols(kafka).find(
    (s) => s.description === "private:Kafka:createCluster",
  );
  const factory = symbol === undefined ? undefined : (kafka as unknown as Record<symbol, unknown>)[symbol];
  return typeof factory === "function" ? (factory as CreateCluster) : undefined;
}
