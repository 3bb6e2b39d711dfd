/**
 * A consumer group's join and sync in linear time, for kafkajs 2.2.4 consumers of thousands of topics.
 *
 * After every join kafkajs builds three objects of the assignment with `reduce` and an object spread
 * per topic — `{ ...result, [topic]: partitions }`, which copies every key so far — in
 * `ConsumerGroup.joinAndSync`, in its private `sync` (the OffsetManager's `memberAssignment`) and in
 * `SubscriptionState.assign`, and compares the assigned with the subscribed topics by `indexOf`. For
 * 5,000 topics per member that is some 4×10^7 key copies: the engine's event loop was blocked for
 * tens of seconds at every rebalance (57 s to start a pair's consumer of 10,000 topics), heartbeats
 * stopped, the session expired, and the group rebalanced again (docs/bench.md, session 10).
 *
 * The replacements are kafkajs 2.2.4's methods line for line, with the objects built by assignment
 * and the differences computed with a Set; what they compute, log and emit is unchanged. Installed
 * process-wide by patching the prototypes, only for the verified kafkajs version;
 * `LP_KAFKAJS_GROUP_BOOKKEEPING=kafkajs` keeps kafkajs's own methods.
 */
import { createRequire } from "node:module";
import { installPatch, type PatchState } from "../version.js";

const require = createRequire(import.meta.url);
const CONSUMER_GROUP = "kafkajs/src/consumer/consumerGroup.js";
const SUBSCRIPTION_STATE = "kafkajs/src/consumer/subscriptionState.js";

interface TopicPartitions {
  topic: string;
  partitions: number[];
}
interface Logger {
  debug(message: string, extra?: object): void;
  info(message: string, extra?: object): void;
  warn(message: string, extra?: object): void;
}
/** The part of a kafkajs ConsumerGroup the two methods read and write. */
interface GroupLike {
  [key: symbol]: () => Promise<void>;
  groupId: string;
  generationId: number;
  memberId: string | null;
  leaderId: string;
  members: unknown[];
  groupProtocol: string;
  topics: string[];
  topicsSubscribed: string[];
  coordinator: { syncGroup(args: object): Promise<{ memberAssignment: Buffer }> };
  logger: Logger;
  assigners: { name: string; assign(args: object): Promise<unknown[]> }[];
  cluster: { refreshMetadata(): Promise<void> };
  instrumentationEmitter: { emit(event: string, payload: object): void };
  partitionsPerSubscribedTopic: Map<string, number[]>;
  subscriptionState: { assign(topicPartitions: TopicPartitions[]): void };
  topicConfigurations: unknown;
  offsetManager: unknown;
  autoCommit: boolean;
  autoCommitInterval: number | null;
  autoCommitThreshold: number | null;
  retrier: (fn: (bail: (e: unknown) => void) => Promise<void>) => Promise<void>;
  isLeader(): boolean;
  assigned(): TopicPartitions[];
  generatePartitionsPerSubscribedTopic(): Map<string, number[]>;
}

/** `topic → partitions` of an assignment list, built in one pass (kafkajs spreads per topic). */
export function byTopic<T>(
  list: readonly { topic: string }[],
  value: (entry: never) => T,
): Record<string, T> {
  const out: Record<string, T> = {};
  for (const entry of list) out[entry.topic] = value(entry as never);
  return out;
}

/** `a` without the elements of `b`, in `a`'s order (kafkajs's arrayDiff, with a Set). */
export function without<T>(a: readonly T[], b: readonly T[]): T[] {
  const drop = new Set(b);
  return a.filter((x) => !drop.has(x));
}

let installed: PatchState | undefined;

/** Patches kafkajs's ConsumerGroup and SubscriptionState (idempotent); returns whether it is active and why not. */
export function installGroupBookkeeping(env: NodeJS.ProcessEnv = process.env): PatchState {
  installed ??= installPatch(env, "LP_KAFKAJS_GROUP_BOOKKEEPING", "kafkajs", () => {
    const ConsumerGroup = require(CONSUMER_GROUP) as
      { prototype?: Record<string | symbol, unknown> } | undefined;
    const SubscriptionState = require(SUBSCRIPTION_STATE) as
      { prototype?: Record<string, unknown> } | undefined;
    const group = ConsumerGroup?.prototype;
    const state = SubscriptionState?.prototype;
    const symbolOf = (description: string) =>
      group ? Object.getOwnPropertySymbols(group).find((s) => s.description === description) : undefined;
    const JOIN = symbolOf("private:ConsumerGroup:join");
    const SYNC = symbolOf("private:ConsumerGroup:sync");
    if (
      !group ||
      !JOIN ||
      !SYNC ||
      typeof group[SYNC] !== "function" ||
      typeof group.joinAndSync !== "function"
    )
      return { active: false, reason: "kafkajs ConsumerGroup join/sync not found" };
    if (!state || typeof state.assign !== "function")
      return { active: false, reason: "kafkajs SubscriptionState.assign not found" };

    const OffsetManager = require("kafkajs/src/consumer/offsetManager/index.js") as new (
      args: object,
    ) => unknown;
    const { MemberAssignment } = require("kafkajs/src/consumer/assignerProtocol.js") as {
      MemberAssignment: { decode(buffer: Buffer): { assignment: Record<string, number[]> } | null };
    };
    const {
      events: { GROUP_JOIN, RECEIVED_UNSUBSCRIBED_TOPICS },
    } = require("kafkajs/src/consumer/instrumentationEvents.js") as {
      events: { GROUP_JOIN: string; RECEIVED_UNSUBSCRIBED_TOPICS: string };
    };
    const websiteUrl = require("kafkajs/src/utils/websiteUrl.js") as (path: string, hash: string) => string;
    const errors = require("kafkajs/src/errors.js") as {
      KafkaJSError: new (e: unknown) => Error;
      KafkaJSNonRetriableError: new (message: string) => Error;
      isRebalancing: (e: unknown) => boolean;
    };

    state.assign = function (
      this: { assignedPartitionsByTopic: object },
      topicPartitions: TopicPartitions[] = [],
    ) {
      this.assignedPartitionsByTopic = byTopic(
        topicPartitions,
        ({ topic, partitions = [] }: TopicPartitions) => ({
          topic,
          partitions,
        }),
      );
    };

    group[SYNC] = async function (this: GroupLike): Promise<void> {
      let assignment: unknown[] = [];
      const {
        groupId,
        generationId,
        memberId,
        members,
        groupProtocol,
        topics,
        topicsSubscribed,
        coordinator,
      } = this;

      if (this.isLeader()) {
        this.logger.debug("Chosen as group leader", { groupId, generationId, memberId, topics });
        const assigner = this.assigners.find(({ name }) => name === groupProtocol);

        if (!assigner) {
          throw new errors.KafkaJSNonRetriableError(
            `Unsupported partition assigner "${groupProtocol}", the assigner wasn't found in the assigners list`,
          );
        }

        await this.cluster.refreshMetadata();
        assignment = await assigner.assign({ members, topics: topicsSubscribed });

        this.logger.debug("Group assignment", {
          groupId,
          generationId,
          groupProtocol,
          assignment,
          topics: topicsSubscribed,
        });
      }

      // Keep track of the partitions for the subscribed topics
      this.partitionsPerSubscribedTopic = this.generatePartitionsPerSubscribedTopic();
      const { memberAssignment } = await this.coordinator.syncGroup({
        groupId,
        generationId,
        memberId,
        groupAssignment: assignment,
      });

      const decodedMemberAssignment = MemberAssignment.decode(memberAssignment);
      const decodedAssignment = decodedMemberAssignment != null ? decodedMemberAssignment.assignment : {};

      this.logger.debug("Received assignment", {
        groupId,
        generationId,
        memberId,
        memberAssignment: decodedAssignment,
      });

      const assignedTopics = Object.keys(decodedAssignment);
      const topicsNotSubscribed = without(assignedTopics, topicsSubscribed);

      if (topicsNotSubscribed.length > 0) {
        const payload = {
          groupId,
          generationId,
          memberId,
          assignedTopics,
          topicsSubscribed,
          topicsNotSubscribed,
        };

        this.instrumentationEmitter.emit(RECEIVED_UNSUBSCRIBED_TOPICS, payload);
        this.logger.warn("Consumer group received unsubscribed topics", {
          ...payload,
          helpUrl: websiteUrl("docs/faq", "why-am-i-receiving-messages-for-topics-i-m-not-subscribed-to"),
        });
      }

      // Remove unsubscribed topics from the list
      const safeAssignment = without(assignedTopics, topicsNotSubscribed);
      const currentMemberAssignment = safeAssignment.map((topic) => ({
        topic,
        partitions: decodedAssignment[topic]!,
      }));

      // Check if the consumer is aware of all assigned partitions
      for (const { topic, partitions: assignedPartitions } of currentMemberAssignment) {
        const knownPartitions = this.partitionsPerSubscribedTopic.get(topic)!;
        const isAwareOfAllAssignedPartitions = assignedPartitions.every((partition) =>
          knownPartitions.includes(partition),
        );

        if (!isAwareOfAllAssignedPartitions) {
          this.logger.warn("Consumer is not aware of all assigned partitions, refreshing metadata", {
            groupId,
            generationId,
            memberId,
            topic,
            knownPartitions,
            assignedPartitions,
          });

          // As kafkajs: one refresh updates the metadata of every topic.
          await this.cluster.refreshMetadata();
          this.partitionsPerSubscribedTopic = this.generatePartitionsPerSubscribedTopic();
          break;
        }
      }

      this.topics = currentMemberAssignment.map(({ topic }) => topic);
      this.subscriptionState.assign(currentMemberAssignment);
      this.offsetManager = new OffsetManager({
        cluster: this.cluster,
        topicConfigurations: this.topicConfigurations,
        instrumentationEmitter: this.instrumentationEmitter,
        memberAssignment: byTopic(currentMemberAssignment, ({ partitions }: TopicPartitions) => partitions),
        autoCommit: this.autoCommit,
        autoCommitInterval: this.autoCommitInterval,
        autoCommitThreshold: this.autoCommitThreshold,
        coordinator,
        groupId,
        generationId,
        memberId,
      });
    };

    group.joinAndSync = function (this: GroupLike): Promise<void> {
      const startJoin = Date.now();
      return this.retrier(async (bail) => {
        try {
          await this[JOIN]!.call(this);
          await this[SYNC]!.call(this);

          const memberAssignment = byTopic(this.assigned(), ({ partitions }: TopicPartitions) => partitions);

          const payload = {
            groupId: this.groupId,
            memberId: this.memberId,
            leaderId: this.leaderId,
            isLeader: this.isLeader(),
            memberAssignment,
            groupProtocol: this.groupProtocol,
            duration: Date.now() - startJoin,
          };

          this.instrumentationEmitter.emit(GROUP_JOIN, payload);
          this.logger.info("Consumer has joined the group", payload);
        } catch (e) {
          if (errors.isRebalancing(e)) {
            // As kafkajs: a rebalance restarts the join and sync through the retrier.
            throw new errors.KafkaJSError(e);
          }

          if ((e as { type?: unknown }).type === "UNKNOWN_MEMBER_ID") {
            this.memberId = null;
            throw new errors.KafkaJSError(e);
          }

          bail(e);
        }
      });
    };
    return { active: true };
  });
  return installed;
}
