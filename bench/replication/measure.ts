/**
 * One measured run of one replicator: pre-load a fresh topic, start the replicator, measure the drain,
 * the end-to-end latency under a steady produce rate and the discovery of a new topic, read the
 * process's CPU time and peak RSS, stop it and delete every topic of the run.
 */
import { errorText } from "../../common/log.js";
import { randomBytes } from "node:crypto";
import { appendFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { sleep } from "../../common/time.js";
import { Kafka, logLevel, type Admin, type Producer, type ProducerRecord } from "kafkajs";
import type { KafkaCluster } from "../../launchers/kafka.js";
import type { ManagedProcess } from "../../launchers/process.js";
import { findDescendant, processUsage, type ProcessUsage } from "../lib/proc.js";
import { percentile } from "../lib/stats.js";
import type { ReplicatorUnderTest } from "./replicators.js";

export interface ReplicationParams {
  records: number;
  partitions: number;
  valueBytes: number;
  /** Steady produce rate of the latency phase (records/s). */
  latencyRate: number;
  latencySeconds: number;
  /** Seconds produced at the same rate before the measured ones (with the warm-up header, not measured). */
  latencyWarmupSeconds: number;
  drainTimeoutSeconds: number;
  discoveryTimeoutSeconds: number;
}

export interface ReplicationRun {
  runId: string;
  /** Loader: how fast the data set was written to the source (not a replicator figure). */
  loadSeconds: number;
  /** Replicator start → destination holds every record. */
  drainSeconds: number | null;
  drainRecordsPerSec: number | null;
  drainMBPerSec: number | null;
  /** First record visible in the destination → all records (excludes start-up). */
  steadyRecordsPerSec: number | null;
  /** Replicator start → first record visible in the destination. */
  startupSeconds: number | null;
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
  latencyRecords: number;
  discoveryMs: number | null;
  discoveryTimedOut: boolean;
  cpuSecondsDrain: number | null;
  cpuSecondsTotal: number | null;
  peakRssMiB: number | null;
  /**
   * Records a `read_committed` consumer reads from the drain topic's destination at the end of the run,
   * beyond the data set (the drain topic gets nothing after the load): at-least-once duplicates, e.g.
   * re-reads after a rebalance at the start; negative if records were missing. The drain ends when the
   * destination's end offsets reach the data set's size, so duplicates (and transaction markers) end it
   * up to that many records early.
   */
  drainDuplicates: number | null;
  error?: string;
}

export type Progress = (line: string) => void;

export function client(cluster: KafkaCluster, id: string): Kafka {
  return new Kafka({
    clientId: `bench-${id}`,
    brokers: cluster.brokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 2000 },
  });
}

/**
 * Retries a produce until it succeeds or `timeoutMs` passed: right after a topic is created (or others
 * deleted) a broker may still answer "does not host this topic-partition" for a while, and kafkajs
 * gives up after its own retries with a non-retriable `KafkaJSNumberOfRetriesExceeded`.
 */
async function send(producer: Producer, record: ProducerRecord, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await producer.send(record);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(200);
    }
  }
}

/** Sum of the end offsets of a topic; 0 while it does not exist or has no leader yet. */
export async function endOffsetSum(admin: Admin, topic: string): Promise<number> {
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((sum, o) => sum + Number(o.high), 0);
  } catch {
    return 0;
  }
}

/**
 * Writes `records` values of `valueBytes` random bytes, round robin over the partitions, with kafkajs
 * batches (2,000 records per request, 4 requests in flight, acks=1, no compression).
 */
export async function loadTopic(
  producer: Producer,
  topic: string,
  params: Pick<ReplicationParams, "records" | "partitions" | "valueBytes">,
  progress?: Progress,
): Promise<number> {
  const started = performance.now();
  const pool = Array.from({ length: 64 }, () => randomBytes(params.valueBytes));
  const batchSize = 2000;
  const inFlight = 4;
  let next = 0;
  let lastReport = started;
  const worker = async (): Promise<void> => {
    while (next < params.records) {
      const from = next;
      const count = Math.min(batchSize, params.records - from);
      next += count;
      const messages = Array.from({ length: count }, (_, i) => ({
        partition: (from + i) % params.partitions,
        value: pool[(from + i) % pool.length] as Buffer,
      }));
      await send(producer, { topic, messages, acks: 1 });
      const now = performance.now();
      if (progress && now - lastReport > 5000) {
        lastReport = now;
        progress(
          `    loading ${topic}: ${next.toLocaleString("en")} / ${params.records.toLocaleString("en")}`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return (performance.now() - started) / 1000;
}

/**
 * Creates a topic and waits until the broker serves every partition of it. Not kafkajs's
 * `waitForLeaders`: on a busy broker its metadata polling gives up with "does not host this
 * topic-partition" while the partitions are still being created. (kafkajs answers `false`, without
 * an error, when a retried request finds the topic already created.)
 */
async function createTopic(admin: Admin, topic: string, partitions: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await admin.createTopics({
        topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
        waitForLeaders: false,
      });
      break;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(250);
    }
  }
  const ready = await waitFor(
    async () => (await admin.fetchTopicOffsets(topic)).length === partitions,
    Math.max(1000, deadline - Date.now()),
    100,
  );
  if (!ready) throw new Error(`topic ${topic}: partitions not served within 60 s`);
}

/** Deletes every non-internal topic (and MirrorMaker 2's internal ones) so the next run starts fresh. */
async function deleteRunTopics(admin: Admin): Promise<void> {
  const topics = (await admin.listTopics()).filter((t) => !t.startsWith("__"));
  if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 }).catch(() => undefined);
}

/**
 * Marks the records the latency consumer does not measure. A header, not a key: keyed records all went to
 * one partition, so the warm-up left the other partitions cold, and the first 1.5 s of the measured phase
 * (all 8 partitions at once) held the p99 of every contender (up to 925 ms; traced with BENCH_LATENCY_TRACE).
 * Unkeyed, warm-up records go round robin over the partitions like the measured ones.
 */
export const WARMUP_HEADER = "lp-bench-warmup";
const WARMUP = { [WARMUP_HEADER]: "1" };
/**
 * The sequence number of a measured record. An at-least-once replicator may deliver a record twice (a
 * partition moving between its engines before its position was committed); the consumer measures each
 * record once, at its first arrival, so every run measures exactly the records produced.
 */
export const SEQUENCE_HEADER = "lp-bench-seq";

/**
 * Reads a topic from the beginning (`read_committed`: records of aborted transactions and transaction
 * markers are not counted) and returns how many records it holds, once the count reached `atLeast` and
 * stayed the same for `quietMs`, or at the deadline.
 */
async function countRecords(
  kafka: Kafka,
  topic: string,
  atLeast: number,
  deadlineMs: number,
  quietMs = 1500,
): Promise<number> {
  const consumer = kafka.consumer({
    groupId: `bench-count-${randomBytes(4).toString("hex")}`,
    maxWaitTimeInMs: 100,
    maxBytesPerPartition: 8 * 1024 * 1024,
    maxBytes: 64 * 1024 * 1024,
  });
  let count = 0;
  let changedAt = Date.now();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (batch.messages.length === 0) return;
        count += batch.messages.length;
        changedAt = Date.now();
      },
    });
    while (Date.now() < deadlineMs && !(count >= atLeast && Date.now() - changedAt >= quietMs)) {
      await sleep(100);
    }
    return count;
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}

async function consumeLatencies(
  kafka: Kafka,
  topic: string,
  expected: number,
  deadlineMs: number,
  onWarmup: () => void,
): Promise<{ latencies: number[]; stop: () => Promise<void>; done: Promise<void> }> {
  const consumer = kafka.consumer({
    groupId: `bench-lat-${randomBytes(4).toString("hex")}`,
    maxWaitTimeInMs: 100,
  });
  const latencies: number[] = [];
  const seen = new Set<string>();
  const traceFile = process.env.BENCH_LATENCY_TRACE;
  const trace = traceFile ? ([] as string[]) : undefined;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    // No offset commits: kafkajs would await one after every batch before fetching again, adding up to a
    // round trip to the latency of every replicator measured.
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      for (const message of batch.messages) {
        if (message.headers?.[WARMUP_HEADER] !== undefined) {
          onWarmup();
          continue;
        }
        const seq = message.headers?.[SEQUENCE_HEADER]?.toString();
        if (seq !== undefined) {
          if (seen.has(seq)) continue;
          seen.add(seq);
        }
        const latency = now - Number(message.timestamp);
        latencies.push(latency);
        if (trace) trace.push(`${now} ${batch.partition} ${latency}`);
      }
      if (latencies.length >= expected) resolveDone();
    },
  });
  const timer = setTimeout(resolveDone, Math.max(0, deadlineMs - Date.now()));
  return {
    latencies,
    done,
    stop: async () => {
      clearTimeout(timer);
      await consumer.disconnect();
      if (traceFile && trace) await appendFile(traceFile, `# ${topic}\n${trace.join("\n")}\n`);
    },
  };
}

/**
 * Produces `rate` records/s for `seconds` (values of `valueBytes`), paced every 10 ms. Records of the first
 * `warmupSeconds` carry the {@link WARMUP_HEADER}: the latency consumer does not measure them (the first
 * second after a drain is slow for every replicator: clients, brokers and JIT settle), so the figures are a
 * steady state.
 * Returns the number of measured records.
 */
async function produceSteadily(
  producer: Producer,
  topic: string,
  options: { rate: number; seconds: number; warmupSeconds: number; valueBytes: number },
): Promise<number> {
  const { rate } = options;
  const value = randomBytes(options.valueBytes);
  const total = Math.round(rate * options.seconds);
  const warmup = Math.min(total, Math.round(rate * options.warmupSeconds));
  const started = performance.now();
  let sent = 0;
  const pending: Promise<unknown>[] = [];
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
    if (due > sent) {
      const messages = Array.from({ length: due - sent }, (_, i) =>
        sent + i < warmup
          ? { value, headers: WARMUP }
          : { value, headers: { [SEQUENCE_HEADER]: String(sent + i) } },
      );
      sent = due;
      pending.push(send(producer, { topic, messages, acks: 1 }));
    }
    await sleep(10);
  }
  await Promise.all(pending);
  return total - warmup;
}

export async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs: number,
  process?: ManagedProcess,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (process && !process.running()) throw new Error(`${process.name} exited:\n${process.tail(20)}`);
    if (await check().catch(() => false)) return true;
    await sleep(intervalMs);
  }
  return false;
}

export interface RunContext {
  source: KafkaCluster;
  destination: KafkaCluster;
  kafkaLib: string;
  progress: Progress;
}

/** Starts the replicator under test on this run's topics (every topic named `<prefix>...`). */
export function startOnRun(
  replicator: ReplicatorUnderTest,
  context: RunContext,
  run: { prefix: string; workDir: string; runId: string },
): Promise<ManagedProcess> {
  return replicator.start({
    source: context.source,
    destination: context.destination,
    topicPattern: `${run.prefix}.*`,
    workDir: run.workDir,
    runId: run.runId,
    kafkaLib: context.kafkaLib,
  });
}

/** One run of one replicator from fresh topics. Errors are recorded in the result, never thrown. */
export async function runReplication(
  replicator: ReplicatorUnderTest,
  params: ReplicationParams,
  context: RunContext,
): Promise<ReplicationRun> {
  const runId = randomBytes(4).toString("hex");
  const prefix = `bench-${runId}-`;
  const drainTopic = `${prefix}drain`;
  const latencyTopic = `${prefix}latency`;
  const newTopic = `${prefix}new`;
  const { progress } = context;
  const src = client(context.source, `src-${runId}`);
  const dst = client(context.destination, `dst-${runId}`);
  const srcAdmin = src.admin();
  const dstAdmin = dst.admin();
  const producer = src.producer({ allowAutoTopicCreation: false });
  const workDir = await mkdtemp(path.join(tmpdir(), `lp-bench-${replicator.id}-`));
  const result: ReplicationRun = {
    runId,
    loadSeconds: 0,
    drainSeconds: null,
    drainRecordsPerSec: null,
    drainMBPerSec: null,
    steadyRecordsPerSec: null,
    startupSeconds: null,
    latencyP50Ms: null,
    latencyP99Ms: null,
    latencyRecords: 0,
    discoveryMs: null,
    discoveryTimedOut: false,
    cpuSecondsDrain: null,
    cpuSecondsTotal: null,
    peakRssMiB: null,
    drainDuplicates: null,
  };
  let proc: ManagedProcess | undefined;
  let pid: number | undefined;
  let lastUsage: ProcessUsage | undefined;
  const usage = (): ProcessUsage | undefined => {
    if (pid === undefined && proc) pid = findDescendant(proc.pid, replicator.processName);
    const current = pid === undefined ? undefined : processUsage(pid);
    if (current) lastUsage = current;
    return lastUsage;
  };
  try {
    await Promise.all([srcAdmin.connect(), dstAdmin.connect(), producer.connect()]);
    await createTopic(srcAdmin, drainTopic, params.partitions);
    await createTopic(srcAdmin, latencyTopic, params.partitions);
    progress(`    loading ${params.records.toLocaleString("en")} records into ${drainTopic}`);
    result.loadSeconds = await loadTopic(producer, drainTopic, params, progress);
    progress(
      `    loaded in ${result.loadSeconds.toFixed(1)} s (${Math.round(params.records / result.loadSeconds).toLocaleString("en")} records/s, kafkajs); starting ${replicator.label}`,
    );

    // ---- drain
    const destDrain = replicator.destinationTopic(drainTopic, context.source.name);
    const t0 = performance.now();
    proc = await startOnRun(replicator, context, { prefix, workDir, runId });
    let firstAt: number | undefined;
    let lastReport = t0;
    const drained = await waitFor(
      async () => {
        usage();
        const sum = await endOffsetSum(dstAdmin, destDrain);
        const now = performance.now();
        if (sum > 0 && firstAt === undefined) firstAt = now;
        if (now - lastReport > 5000) {
          lastReport = now;
          progress(
            `    drain: ${sum.toLocaleString("en")} / ${params.records.toLocaleString("en")} after ${((now - t0) / 1000).toFixed(0)} s`,
          );
        }
        return sum >= params.records;
      },
      params.drainTimeoutSeconds * 1000,
      100,
      proc,
    );
    const tDone = performance.now();
    result.cpuSecondsDrain = usage()?.cpuSeconds ?? null;
    if (!drained) throw new Error(`drain did not finish within ${params.drainTimeoutSeconds} s`);
    result.drainSeconds = (tDone - t0) / 1000;
    result.drainRecordsPerSec = params.records / result.drainSeconds;
    result.drainMBPerSec = (params.records * params.valueBytes) / 1e6 / result.drainSeconds;
    if (firstAt !== undefined) {
      result.startupSeconds = (firstAt - t0) / 1000;
      if (tDone > firstAt) result.steadyRecordsPerSec = params.records / ((tDone - firstAt) / 1000);
    }
    progress(
      `    drained in ${result.drainSeconds.toFixed(1)} s: ${Math.round(result.drainRecordsPerSec).toLocaleString("en")} records/s, ${result.drainMBPerSec.toFixed(1)} MB/s`,
    );

    // ---- latency under a steady rate
    const destLatency = replicator.destinationTopic(latencyTopic, context.source.name);
    await send(producer, { topic: latencyTopic, messages: [{ value: "w", headers: WARMUP }], acks: 1 });
    const ready = await waitFor(
      async () => (await endOffsetSum(dstAdmin, destLatency)) > 0,
      60_000,
      100,
      proc,
    );
    if (!ready) throw new Error(`latency topic not replicated within 60 s`);
    const expected = Math.round(params.latencyRate * params.latencySeconds);
    let warmedUp = false;
    const consumer = await consumeLatencies(
      dst,
      destLatency,
      expected,
      Date.now() + (params.latencySeconds + 60) * 1000,
      () => {
        warmedUp = true;
      },
    );
    try {
      if (!(await waitFor(async () => warmedUp, 60_000, 50, proc))) {
        throw new Error("latency consumer saw no warm-up record within 60 s");
      }
      progress(
        `    latency: producing ${params.latencyRate} records/s for ${params.latencyWarmupSeconds} s (warm-up, not measured) + ${params.latencySeconds} s`,
      );
      usage();
      await produceSteadily(producer, latencyTopic, {
        rate: params.latencyRate,
        seconds: params.latencyWarmupSeconds + params.latencySeconds,
        warmupSeconds: params.latencyWarmupSeconds,
        valueBytes: params.valueBytes,
      });
      await consumer.done;
    } finally {
      await consumer.stop();
    }
    result.latencyRecords = consumer.latencies.length;
    if (consumer.latencies.length < expected) {
      progress(`    latency: only ${consumer.latencies.length} of ${expected} records arrived`);
    }
    if (consumer.latencies.length > 0) {
      result.latencyP50Ms = percentile(consumer.latencies, 50);
      result.latencyP99Ms = percentile(consumer.latencies, 99);
    }
    progress(
      `    latency p50 ${result.latencyP50Ms} ms, p99 ${result.latencyP99Ms} ms (${consumer.latencies.length} records)`,
    );

    // ---- discovery of a topic created while the replicator runs
    const destNew = replicator.destinationTopic(newTopic, context.source.name);
    const tCreate = performance.now();
    await createTopic(srcAdmin, newTopic, 1);
    await send(producer, { topic: newTopic, messages: [{ value: "hello" }], acks: 1 });
    const discovered = await waitFor(
      async () => {
        usage();
        return (await endOffsetSum(dstAdmin, destNew)) > 0;
      },
      params.discoveryTimeoutSeconds * 1000,
      50,
      proc,
    );
    if (discovered) result.discoveryMs = performance.now() - tCreate;
    else result.discoveryTimedOut = true;
    // Counted by reading the destination: under exactly-once the end offsets also count the transaction
    // markers (one per partition and transaction), which are not records.
    const counted = await countRecords(dst, destDrain, params.records, Date.now() + 120_000);
    result.drainDuplicates = counted - params.records;
    progress(
      `    destination holds ${counted.toLocaleString("en")} records: ${result.drainDuplicates} duplicates`,
    );
    progress(
      discovered
        ? `    discovery: ${Math.round(result.discoveryMs as number)} ms`
        : `    discovery: not within ${params.discoveryTimeoutSeconds} s`,
    );
  } catch (error) {
    result.error = errorText(error);
    progress(`    FAILED: ${result.error.split("\n")[0]}`);
  } finally {
    const final = usage();
    result.cpuSecondsTotal = final?.cpuSeconds ?? null;
    result.peakRssMiB = final?.peakRssMiB ?? null;
    if (proc) await proc.stop();
    await producer.disconnect().catch(() => undefined);
    await Promise.all([deleteRunTopics(srcAdmin), deleteRunTopics(dstAdmin)]).catch(() => undefined);
    await Promise.all([srcAdmin.disconnect(), dstAdmin.disconnect()]).catch(() => undefined);
    if (!result.error) await rm(workDir, { recursive: true, force: true });
    else progress(`    logs kept in ${workDir}`);
  }
  return result;
}
