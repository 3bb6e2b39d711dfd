/**
 * Target topics (the MirrorMaker 2 `MirrorSourceConnector` part): a target is created like its source
 * (partition count and the configs set on the source topic) by the leader, and grows its partitions
 * when the source does. Other engines wait briefly for the leader to create it.
 */
import kafkajs from "kafkajs";
import type { Pipeline } from "../plan.js";
import { ReplicatorError } from "../errors.js";
import { sleep } from "../../common/time.js";
import { connectAdmin, type Datacenter } from "./datacenters.js";
import { DEFAULT_MAX_MESSAGE_BYTES, LEADER_TARGET_WAIT_MS } from "./tuning.js";
import type { EngineContext } from "./types.js";

// kafkajs is CommonJS: under plain Node ESM only its default export is reliable.
const { ConfigResourceTypes } = kafkajs;

/** Topic configs copied from the source topic to the target topic when set on the source. */
export const COPIED_TOPIC_CONFIGS = [
  "cleanup.policy",
  "retention.ms",
  "retention.bytes",
  "max.message.bytes",
  "min.compaction.lag.ms",
  "delete.retention.ms",
  "compression.type",
  "message.timestamp.type",
] as const;

export interface TargetSizes {
  source: number;
  target: number;
  /** The target topic's max.message.bytes. */
  maxMessageBytes: number;
}

/** Creates the target topic like the source (partitions and key configs), or grows its partitions. */
export async function ensureTarget(
  ctx: EngineContext,
  p: Pipeline,
  src: Datacenter,
  dst: Datacenter,
): Promise<TargetSizes> {
  await connectAdmin(dst);
  const [sourceMeta] = (await src.admin.fetchTopicMetadata({ topics: [p.sourceTopic] })).topics;
  const sourcePartitions = sourceMeta?.partitions.length ?? 0;
  if (sourcePartitions === 0)
    throw new ReplicatorError("SOURCE_GONE", `source topic ${p.sourceTopic} has no partitions`);
  const described = await src.admin.describeConfigs({
    resources: [
      { type: ConfigResourceTypes.TOPIC, name: p.sourceTopic, configNames: [...COPIED_TOPIC_CONFIGS] },
    ],
    includeSynonyms: false,
  });
  const configEntries = (described.resources[0]?.configEntries ?? [])
    .filter((e) => e.configSource === 1 /* TOPIC_CONFIG: set on the topic */)
    .map((e) => ({ name: e.configName, value: e.configValue }));

  let existing = new Set(await dst.admin.listTopics());
  if (!existing.has(p.targetTopic) && !ctx.isLeader()) {
    // The leader (another engine or instance) saw the same topic in the same round and is creating
    // the target now: wait for it briefly rather than a whole discovery interval.
    existing = await waitForLeaderTarget(ctx, dst, p.targetTopic);
  }
  if (!existing.has(p.targetTopic)) {
    if (!ctx.isLeader()) {
      throw new ReplicatorError(
        "WAITING_FOR_LEADER",
        `target topic ${p.targetTopic} is created by the leader`,
      );
    }
    // kafkajs answers false, not an error, when another pipeline (merge) or replicator created it meanwhile.
    const created = await dst.admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: p.targetTopic, numPartitions: sourcePartitions, configEntries }],
    });
    if (created)
      ctx.logger.info(
        { datacenter: p.destinationDc, topic: p.targetTopic, partitions: sourcePartitions, configEntries },
        "target topic created",
      );
  }
  let [targetMeta] = (await dst.admin.fetchTopicMetadata({ topics: [p.targetTopic] })).topics;
  let targetPartitions = targetMeta?.partitions.length ?? 0;
  if (targetPartitions < sourcePartitions && p.model !== "merge") {
    if (!ctx.isLeader()) {
      throw new ReplicatorError(
        "WAITING_FOR_LEADER",
        `target ${p.targetTopic} partitions are added by the leader`,
      );
    }
    await dst.admin.createPartitions({
      topicPartitions: [{ topic: p.targetTopic, count: sourcePartitions }],
    });
    ctx.logger.info(
      { topic: p.targetTopic, from: targetPartitions, to: sourcePartitions },
      "target partitions added",
    );
    [targetMeta] = (await dst.admin.fetchTopicMetadata({ topics: [p.targetTopic] })).topics;
    targetPartitions = targetMeta?.partitions.length ?? 0;
  }
  const targetConfig = await dst.admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: p.targetTopic, configNames: ["max.message.bytes"] }],
    includeSynonyms: false,
  });
  const maxMessageBytes = Number(
    targetConfig.resources[0]?.configEntries.find((e) => e.configName === "max.message.bytes")?.configValue ??
      DEFAULT_MAX_MESSAGE_BYTES,
  );
  return { source: sourcePartitions, target: targetPartitions, maxMessageBytes };
}

/**
 * Polls the destination's topic list until `topic` exists or this engine is elected, for at most two
 * discovery intervals (the leader's rounds are not aligned with this engine's) and at most
 * LEADER_TARGET_WAIT_MS; returns the last list.
 */
async function waitForLeaderTarget(ctx: EngineContext, dst: Datacenter, topic: string): Promise<Set<string>> {
  const deadline = Date.now() + Math.min(LEADER_TARGET_WAIT_MS, 2 * ctx.config().discovery.intervalMs);
  let delay = 25;
  for (;;) {
    await sleep(delay, { unref: true });
    const topics = new Set(await dst.admin.listTopics());
    // Elected meanwhile (the election runs beside the first round): create it now.
    if (topics.has(topic) || ctx.isLeader() || Date.now() + delay > deadline || !ctx.running()) return topics;
    delay = Math.min(delay * 2, 200);
  }
}
