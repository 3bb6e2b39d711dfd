/**
 * The record slicing of a pipeline, pure (no I/O): the records of one fetched source partition become
 * slices — the records sent and acknowledged together — and each slice becomes produce requests within the
 * destination's batch limit. Each record gets its provenance headers; a record over the limit is chunked.
 */
import type { IHeaders, KafkaMessage, Message } from "kafkajs";
import { splitRecordSized, type RecordLike } from "../chunking.js";
import { decideRecord, type Pipeline, type RecordDecision } from "../plan.js";
import { withProvenance, type Headers, type ReplicationPolicy } from "../policy.js";

export interface SliceOptions {
  pipeline: Pipeline;
  policy: ReplicationPolicy;
  /** The source partition the records were fetched from, and the target partition they go to. */
  sourcePartition: number;
  targetPartition: number;
  /** Exactly-once resume: records below this offset were replicated before and are passed over. */
  resumeFrom?: bigint;
  /** At most this many records and this many requests' worth of bytes per slice (tuning.ts SLICE_LIMITS). */
  limits: { readonly records: number; readonly requests: number };
  /** The destination's batch limit (max.message.bytes less the batch's own header). */
  maxBatchBytes: number;
}

export interface Slice {
  /** Index in the fetched records after this slice (where the next slice starts). */
  end: number;
  /** The last record this slice covers (sent, skipped or replicated before); undefined: nothing left. */
  last?: KafkaMessage;
  /** False when every record was replicated before (exactly-once resume): nothing to send or commit. */
  replicable: boolean;
  /** The records to send (chunks of a chunked record in order), with their encoded sizes. */
  records: RecordLike[];
  sizes: number[];
  /** Key and value bytes of the source records sent. */
  bytes: number;
  /** Timestamps of the source records sent (latency is measured from them). */
  timestamps: number[];
  /** Why records were not sent (cycle, not-local, unrouted), one entry per record. */
  skipped: Exclude<RecordDecision, "send">[];
  /** Source records split into chunks. */
  chunked: number;
}

/** The next slice of `messages` from index `from`. */
export function nextSlice(messages: readonly KafkaMessage[], from: number, options: SliceOptions): Slice {
  const { pipeline: p, policy, limits, maxBatchBytes } = options;
  const sliceBytes = limits.requests * maxBatchBytes;
  const slice: Slice = {
    end: from,
    replicable: false,
    records: [],
    sizes: [],
    bytes: 0,
    timestamps: [],
    skipped: [],
    chunked: 0,
  };
  let outBytes = 0;
  let i = from;
  while (i < messages.length && i - from < limits.records) {
    const m = messages[i]!;
    if (options.resumeFrom !== undefined && BigInt(m.offset) < options.resumeFrom) {
      slice.last = m;
      i++;
      continue;
    }
    const headers = m.headers as Headers | undefined;
    const decision = decideRecord(p, policy, headers);
    if (decision !== "send") {
      slice.skipped.push(decision);
      slice.replicable = true;
      slice.last = m;
      i++;
      continue;
    }
    const record: RecordLike = {
      key: m.key,
      value: m.value,
      headers: withProvenance(headers, {
        dc: p.sourceDc,
        topic: p.sourceTopic,
        partition: options.sourcePartition,
        offset: m.offset,
      }),
      timestamp: m.timestamp,
      partition: options.targetPartition,
    };
    const parts = splitRecordSized(record, maxBatchBytes);
    let partsBytes = 0;
    for (const part of parts) partsBytes += part.size;
    // A record that alone exceeds the limit forms a slice of its own (several requests).
    if (slice.records.length > 0 && outBytes + partsBytes > sliceBytes) break; // the next slice's first
    if (parts.length > 1) slice.chunked++;
    for (const part of parts) {
      slice.records.push(part.record);
      slice.sizes.push(part.size);
    }
    outBytes += partsBytes;
    slice.bytes += (m.key?.length ?? 0) + (m.value?.length ?? 0);
    slice.timestamps.push(Number(m.timestamp));
    slice.replicable = true;
    slice.last = m;
    i++;
  }
  slice.end = i;
  return slice;
}

/** Records cut, in order, into requests that stay within the destination's batch limit. */
export function toRequests(
  records: readonly RecordLike[],
  sizes: readonly number[],
  maxBatchBytes: number,
): Message[][] {
  const requests: Message[][] = [];
  let chunk: Message[] = [];
  let size = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const s = sizes[i]!;
    if (size + s > maxBatchBytes && chunk.length > 0) {
      requests.push(chunk);
      chunk = [];
      size = 0;
    }
    const message: Message = {
      key: r.key,
      value: r.value,
      headers: r.headers as IHeaders,
      partition: r.partition,
    };
    if (r.timestamp !== undefined) message.timestamp = r.timestamp;
    chunk.push(message);
    size += s;
  }
  if (chunk.length > 0) requests.push(chunk);
  return requests;
}
