/**
 * Target topics (the MirrorMaker 2 `MirrorSourceConnector` part): a target is created like its source
 * (partition count and the configs set on the source topic) by the leader, and grows its partitions
 * when the source does. Other engines wait briefly for the leader to create it. The targets of one
 * discovery round are prepared together: a few admin requests whatever the number of topics.
 */
import kafkajs from "kafkajs";
import type { Pipeline } from "../plan.js";
import { ReplicatorError } from "../errors.js";
import { sleep } from "../../common/time.js";
import { connectAdmin, offsetsReader, type Datacenter } from "./datacenters.js";
import { DEFAULT_MAX_MESSAGE_BYTES, LEADER_TARGET_WAIT_MS, TARGET_READY_WAIT_MS } from "./tuning.js";
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

/** Resources per admin request (describeConfigs, createTopics, metadata): well inside a request's limits. */
const ADMIN_BATCH = 500;

function chunks<T>(items: readonly T[], size = ADMIN_BATCH): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The values of `configNames` set on each topic (not the broker's defaults), by topic. */
async function topicConfigs(
  admin: Datacenter["admin"],
  topics: readonly string[],
  configNames: readonly string[],
  setOnTopicOnly: boolean,
): Promise<Map<string, { name: string; value: string }[]>> {
  const out = new Map<string, { name: string; value: string }[]>();
  for (const batch of chunks(topics)) {
    const described = await admin.describeConfigs({
      resources: batch.map((name) => ({
        type: ConfigResourceTypes.TOPIC,
        name,
        configNames: [...configNames],
      })),
      includeSynonyms: false,
    });
    for (const resource of described.resources) {
      out.set(
        resource.resourceName,
        resource.configEntries
          .filter((e) => !setOnTopicOnly || e.configSource === 1 /* TOPIC_CONFIG: set on the topic */)
          .map((e) => ({ name: e.configName, value: e.configValue })),
      );
    }
  }
  return out;
}

async function partitionCounts(
  admin: Datacenter["admin"],
  topics: readonly string[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const batch of chunks(topics)) {
    const { topics: meta } = await admin.fetchTopicMetadata({ topics: batch });
    for (const t of meta) out.set(t.name, t.partitions.length);
  }
  return out;
}

/**
 * The partition counts of those of `topics` the destination takes records for: every partition's leader
 * answers for it (../../kafka/reader.ts `writable`). A topic created a moment ago takes a while to get
 * there (1,000 new topics on one local broker: 5.5–7 s until all are listed, 9.5–13 s until all take a
 * record; docs/bench.md); the others are ready in a later round, so the targets that are wait for at
 * most TARGET_READY_WAIT_MS, not for the slowest. A flow that started on a target still refusing records
 * would only burn its sender's retries (and, exactly-once, hold up the transaction of every topic).
 */
async function readyTargets(dst: Datacenter, topics: readonly string[]): Promise<Map<string, number>> {
  const deadline = Date.now() + TARGET_READY_WAIT_MS;
  let delay = 50;
  const reader = offsetsReader(dst);
  let ready = await reader.writable(topics);
  while (ready.size < topics.length && Date.now() + delay < deadline) {
    await sleep(delay, { unref: true });
    delay = Math.min(delay * 2, 250);
    ready = await reader.writable(topics);
  }
  return ready;
}

/**
 * Creates the targets of `pipelines` (one source and one destination datacenter) like their sources
 * (partition count and the configs set on the source topic), or grows their partitions, a few admin
 * requests for all of them. Per pipeline: its sizes, or why not (WAITING_FOR_LEADER when another
 * engine or instance creates it; SOURCE_GONE). A failed request rejects (every pipeline retries).
 */
export async function ensureTargets(
  ctx: EngineContext,
  pipelines: readonly Pipeline[],
  src: Datacenter,
  dst: Datacenter,
): Promise<Map<string, TargetSizes | ReplicatorError>> {
  const out = new Map<string, TargetSizes | ReplicatorError>();
  if (pipelines.length === 0) return out;
  await connectAdmin(src);
  await connectAdmin(dst);
  const sources = [...new Set(pipelines.map((p) => p.sourceTopic))];
  // The round's discovery has just read every source topic's partition count: only the others are asked.
  const sourcePartitions = new Map<string, number>();
  for (const t of sources) {
    const known = src.topics.get(t);
    if (known !== undefined) sourcePartitions.set(t, known);
  }
  const unknown = sources.filter((t) => !sourcePartitions.has(t));
  if (unknown.length > 0)
    for (const [t, n] of await partitionCounts(src.admin, unknown)) sourcePartitions.set(t, n);
  const live = pipelines.filter((p) => {
    if ((sourcePartitions.get(p.sourceTopic) ?? 0) > 0) return true;
    out.set(p.id, new ReplicatorError("SOURCE_GONE", `source topic ${p.sourceTopic} has no partitions`));
    return false;
  });
  if (live.length === 0) return out;
  const configs = await topicConfigs(
    src.admin,
    [...new Set(live.map((p) => p.sourceTopic))],
    COPIED_TOPIC_CONFIGS,
    true,
  );

  // Targets created earlier may not be listed yet (a broker takes seconds for many new topics): they are
  // not created again (kafkajs logs each TOPIC_ALREADY_EXISTS answer as an error).
  let existing = new Set([...(await dst.admin.listTopics()), ...dst.createdTargets]);
  const missing = () => [...new Set(live.map((p) => p.targetTopic).filter((t) => !existing.has(t)))];
  // The leader (another engine or instance) saw the same topics in the same round and is creating the
  // targets now: wait for them briefly rather than a whole discovery interval.
  if (missing().length > 0 && !ctx.isLeader()) existing = await waitForLeaderTargets(ctx, dst, missing());
  const toCreate = missing();
  if (toCreate.length > 0 && ctx.isLeader()) {
    // The first pipeline of a target sets its shape (merge: several sources write one target).
    const shapeOf = new Map<string, Pipeline>();
    for (const p of live) if (!shapeOf.has(p.targetTopic)) shapeOf.set(p.targetTopic, p);
    for (const batch of chunks(toCreate)) {
      const topics = batch.map((topic) => {
        const p = shapeOf.get(topic)!;
        return {
          topic,
          numPartitions: sourcePartitions.get(p.sourceTopic)!,
          configEntries: configs.get(p.sourceTopic) ?? [],
        };
      });
      // kafkajs answers false, not an error, when some existed (another pipeline or replicator created
      // them). Its waitForLeaders fails on a topic the metadata does not know yet: waited for below.
      await dst.admin.createTopics({ waitForLeaders: false, topics });
      ctx.logger.info(
        {
          datacenter: dst.config.name,
          count: topics.length,
          topics: topics
            .slice(0, 20)
            .map((t) => ({ topic: t.topic, partitions: t.numPartitions, configEntries: t.configEntries })),
        },
        topics.length === 1 ? "target topic created" : "target topics created",
      );
      for (const t of batch) {
        existing.add(t);
        dst.createdTargets.add(t);
      }
    }
  }
  const ready = live.filter((p) => {
    if (existing.has(p.targetTopic)) return true;
    out.set(
      p.id,
      new ReplicatorError("WAITING_FOR_LEADER", `target topic ${p.targetTopic} is created by the leader`),
    );
    return false;
  });
  const targets = [...new Set(ready.map((p) => p.targetTopic))];
  let targetPartitions = await readyTargets(dst, targets);
  const grow = new Map<string, number>();
  for (const p of ready) {
    const wanted = sourcePartitions.get(p.sourceTopic)!;
    const known = targetPartitions.get(p.targetTopic);
    // A target not ready yet is looked at again in a later round.
    if (p.model !== "merge" && known !== undefined && known < wanted)
      grow.set(p.targetTopic, Math.max(wanted, grow.get(p.targetTopic) ?? 0));
  }
  if (grow.size > 0 && ctx.isLeader()) {
    for (const batch of chunks([...grow])) {
      await dst.admin.createPartitions({
        topicPartitions: batch.map(([topic, count]) => ({ topic, count })),
      });
      for (const [topic, count] of batch)
        ctx.logger.info({ topic, from: targetPartitions.get(topic), to: count }, "target partitions added");
    }
    targetPartitions = await readyTargets(dst, targets);
  }
  const limits = await topicConfigs(
    dst.admin,
    targets.filter((t) => targetPartitions.has(t)),
    ["max.message.bytes"],
    false,
  );
  for (const p of ready) {
    if (!targetPartitions.has(p.targetTopic)) {
      out.set(
        p.id,
        new ReplicatorError(
          "TARGET_NOT_READY",
          `target topic ${p.targetTopic} is not ready in the destination yet`,
        ),
      );
      continue;
    }
    const target = targetPartitions.get(p.targetTopic) ?? 0;
    const source = sourcePartitions.get(p.sourceTopic)!;
    if (p.model !== "merge" && target < source) {
      out.set(
        p.id,
        new ReplicatorError(
          "WAITING_FOR_LEADER",
          `target ${p.targetTopic} partitions are added by the leader`,
        ),
      );
      continue;
    }
    const maxMessageBytes = Number(
      limits.get(p.targetTopic)?.find((e) => e.name === "max.message.bytes")?.value ??
        DEFAULT_MAX_MESSAGE_BYTES,
    );
    out.set(p.id, { source, target, maxMessageBytes });
  }
  return out;
}

/**
 * Polls the destination's topic list until every topic exists or this engine is elected, for at most two
 * discovery intervals (the leader's rounds are not aligned with this engine's) and at most
 * LEADER_TARGET_WAIT_MS; returns the last list.
 */
async function waitForLeaderTargets(
  ctx: EngineContext,
  dst: Datacenter,
  topics: readonly string[],
): Promise<Set<string>> {
  const deadline = Date.now() + Math.min(LEADER_TARGET_WAIT_MS, 2 * ctx.config().discovery.intervalMs);
  let delay = 25;
  for (;;) {
    await sleep(delay, { unref: true });
    const listed = new Set(await dst.admin.listTopics());
    // Elected meanwhile (the election runs beside the first round): create them now.
    if (
      topics.every((t) => listed.has(t)) ||
      ctx.isLeader() ||
      Date.now() + delay > deadline ||
      !ctx.running()
    )
      return listed;
    delay = Math.min(delay * 2, 200);
  }
}
