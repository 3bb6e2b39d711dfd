/**
 * The scale row set: N topics of one partition, `records` records of `valueBytes` each, created and
 * loaded before the replicator starts; measured: time until every topic is complete in the destination,
 * time to the first record, peak RSS, CPU seconds and the peak of the replicator's broker connections
 * (what grows with the topic count in a model of one consumer group per topic).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Admin } from "kafkajs";
import { ClusterReader } from "../../kafka/reader.js";
import { errorText } from "../../common/log.js";
import { sleep } from "../../common/time.js";
import type { ManagedProcess } from "../../launchers/process.js";
import { findDescendant, processUsage, tcpConnections } from "../lib/proc.js";
import { client, startOnRun, waitFor, type RunContext } from "./measure.js";
import type { ReplicatorUnderTest } from "./replicators.js";

export interface ScaleParams {
  topics: number;
  records: number;
  valueBytes: number;
  timeoutSeconds: number;
}

export interface ScaleRun {
  runId: string;
  topics: number;
  records: number;
  /** Replicator start → every topic holds `records` records in the destination. */
  completeSeconds: number | null;
  /** Replicator start → the first record in any destination topic. */
  firstRecordSeconds: number | null;
  /** Topics complete when the run ended (all of them unless it timed out). */
  topicsComplete: number;
  peakRssMiB: number | null;
  cpuSeconds: number | null;
  /** Peak of the replicator process's established TCP connections to the two brokers. */
  peakConnections: number | null;
  error?: string;
}

/** Creates topics in requests of 200, retrying while the broker is busy. */
async function createTopics(admin: Admin, topics: string[]): Promise<void> {
  for (let i = 0; i < topics.length; i += 200) {
    const chunk = topics.slice(i, i + 200);
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.createTopics({
          topics: chunk.map((topic) => ({ topic, numPartitions: 1, replicationFactor: 1 })),
          waitForLeaders: true,
          timeout: 60_000,
        });
        break;
      } catch (error) {
        if (attempt >= 5) throw error;
        await sleep(500);
      }
    }
  }
}

/** Deletes topics in requests of 200 (best effort: the next run uses other names). */
async function deleteTopics(admin: Admin, prefix: string): Promise<void> {
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix) || t.includes(`.${prefix}`));
  for (let i = 0; i < topics.length; i += 200)
    await admin.deleteTopics({ topics: topics.slice(i, i + 200), timeout: 60_000 }).catch(() => undefined);
}

/** Which of `topics` hold at least `records` records now, and whether any holds one (one batched read). */
async function completeTopics(
  reader: ClusterReader,
  topics: string[],
  records: number,
): Promise<{ done: string[]; anyRecord: boolean }> {
  const done: string[] = [];
  let anyRecord = false;
  for (const [topic, offsets] of await reader.offsets(topics)) {
    const high = offsets.reduce((sum, o) => sum + Number(o.high), 0);
    if (high > 0) anyRecord = true;
    if (high >= records) done.push(topic);
  }
  return { done, anyRecord };
}

/** One scale run of one replicator from fresh topics. Errors are recorded in the result, never thrown. */
export async function runScale(
  replicator: ReplicatorUnderTest,
  params: ScaleParams,
  context: RunContext,
): Promise<ScaleRun> {
  const runId = randomBytes(4).toString("hex");
  const prefix = `scale-${runId}-`;
  const { progress } = context;
  const sources = Array.from({ length: params.topics }, (_, i) => `${prefix}${i}`);
  const destinations = sources.map((t) => replicator.destinationTopic(t, context.source.name));
  const src = client(context.source, `scale-src-${runId}`);
  const dst = client(context.destination, `scale-dst-${runId}`);
  const srcAdmin = src.admin();
  const dstAdmin = dst.admin();
  const reader = ClusterReader.create(dst, dstAdmin);
  const producer = src.producer({ allowAutoTopicCreation: false });
  const workDir = await mkdtemp(path.join(tmpdir(), `lp-bench-scale-${replicator.id}-`));
  const ports = new Set(
    [...context.source.brokers, ...context.destination.brokers].map((b) => Number(b.split(":").at(-1))),
  );
  const result: ScaleRun = {
    runId,
    topics: params.topics,
    records: params.records,
    completeSeconds: null,
    firstRecordSeconds: null,
    topicsComplete: 0,
    peakRssMiB: null,
    cpuSeconds: null,
    peakConnections: null,
  };
  let proc: ManagedProcess | undefined;
  let pid: number | undefined;
  const sample = (): void => {
    if (pid === undefined && proc) pid = findDescendant(proc.pid, replicator.processName);
    if (pid === undefined) return;
    const usage = processUsage(pid);
    if (usage) {
      result.cpuSeconds = usage.cpuSeconds;
      result.peakRssMiB = usage.peakRssMiB;
    }
    result.peakConnections = Math.max(result.peakConnections ?? 0, tcpConnections(pid, ports));
  };
  try {
    await Promise.all([srcAdmin.connect(), dstAdmin.connect(), producer.connect()]);
    progress(`    creating ${params.topics} topics and loading ${params.records} records into each`);
    await createTopics(srcAdmin, sources);
    // Listed with a leader is not yet writable: 10,000 new topics answered NOT_LEADER_OR_FOLLOWER past
    // the producer's retries. Loaded once every partition's leader answers for it.
    const sourceReader = ClusterReader.create(src, srcAdmin);
    try {
      const ready = await waitFor(
        async () => (await sourceReader.writable(sources)).size === sources.length,
        params.timeoutSeconds * 1000,
        500,
      );
      if (!ready)
        throw new Error(
          `the ${params.topics} source topics did not take records within ${params.timeoutSeconds} s`,
        );
    } finally {
      await sourceReader.disconnect();
    }
    const value = randomBytes(params.valueBytes);
    for (let i = 0; i < sources.length; i += 100) {
      await producer.sendBatch({
        acks: 1,
        topicMessages: sources.slice(i, i + 100).map((topic) => ({
          topic,
          messages: Array.from({ length: params.records }, () => ({ value })),
        })),
      });
    }
    const t0 = performance.now();
    proc = await startOnRun(replicator, context, { prefix, workDir, runId });
    const pending = new Set(destinations);
    let lastReport = t0;
    const sampler = setInterval(sample, 250);
    try {
      const complete = await waitFor(
        async () => {
          const { done, anyRecord } = await completeTopics(reader, [...pending], params.records);
          const now = performance.now();
          if (result.firstRecordSeconds === null && (anyRecord || pending.size < destinations.length))
            result.firstRecordSeconds = (now - t0) / 1000;
          for (const t of done) pending.delete(t);
          if (now - lastReport > 5000) {
            lastReport = now;
            progress(
              `    ${destinations.length - pending.size} / ${destinations.length} topics complete after ${((now - t0) / 1000).toFixed(0)} s`,
            );
          }
          return pending.size === 0;
        },
        params.timeoutSeconds * 1000,
        200,
        proc,
      );
      if (complete) result.completeSeconds = (performance.now() - t0) / 1000;
    } finally {
      clearInterval(sampler);
      sample();
    }
    result.topicsComplete = destinations.length - pending.size;
    progress(
      result.completeSeconds === null
        ? `    only ${result.topicsComplete} of ${params.topics} topics complete after ${params.timeoutSeconds} s`
        : `    all ${params.topics} topics complete after ${result.completeSeconds.toFixed(1)} s (first record ${result.firstRecordSeconds?.toFixed(1)} s); ` +
            `peak RSS ${result.peakRssMiB?.toFixed(0)} MiB, CPU ${result.cpuSeconds?.toFixed(1)} s, ${result.peakConnections} broker connections`,
    );
  } catch (error) {
    result.error = errorText(error);
    progress(`    FAILED: ${result.error.split("\n")[0]}`);
  } finally {
    if (proc) await proc.stop();
    await producer.disconnect().catch(() => undefined);
    await Promise.all([deleteTopics(srcAdmin, prefix), deleteTopics(dstAdmin, prefix)]).catch(
      () => undefined,
    );
    await Promise.all([srcAdmin.disconnect(), dstAdmin.disconnect(), reader.disconnect()]).catch(
      () => undefined,
    );
    if (!result.error) await rm(workDir, { recursive: true, force: true });
    else progress(`    logs kept in ${workDir}`);
  }
  return result;
}
