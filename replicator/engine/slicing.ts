/**
 * The record slicing of a pipeline, pure (no I/O): the records of one fetched source partition become
 * slices — the records sent and acknowledged together — and each slice becomes produce requests within the
 * destination's batch limit. Each record gets its provenance headers; a record over the limit is chunked.
 */
import type { IHeaders, KafkaMessage, Message } from "kafkajs";
import { splitRecordSized, type RecordLike } from "../chunking.js";
import { ChunkError } from "../errors.js";
import { decideRecord, type Pipeline, type RecordDecision } from "../plan.js";
import { provenanceHeaders, withProvenance, type Headers, type ReplicationPolicy } from "../policy.js";
import { HEADER_LIST, headerListOf, setHeaders, type WithHeaderList } from "../../kafka/headers.js";

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
  /** Per source record sent: the record and its part of `records` (first index, count), in order. */
  units: SliceUnit[];
  /** A record that cannot be cut to the destination's limit (its key and headers alone are over it). */
  unsendable?: { message: KafkaMessage; error: unknown };
}

/** One source record of a slice and the records (its chunks) it is sent as. */
export interface SliceUnit {
  message: KafkaMessage;
  first: number;
  count: number;
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
    units: [],
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
    const source = {
      dc: p.sourceDc,
      topic: p.sourceTopic,
      partition: options.sourcePartition,
      offset: m.offset,
    };
    // The provenance headers, read once: set in the object and, in place, in the ordered list.
    const provenance = provenanceHeaders(headers, source);
    const record: RecordLike = {
      key: m.key,
      value: m.value,
      headers: withProvenance(headers, source, provenance),
      headerList: setHeaders(headerListOf(m as WithHeaderList), provenance),
      timestamp: m.timestamp,
      partition: options.targetPartition,
    };
    let parts: { record: RecordLike; size: number }[];
    try {
      parts = splitRecordSized(record, maxBatchBytes);
    } catch (error) {
      if (!(error instanceof ChunkError)) throw error;
      // Alone in its slice, for the pipeline's error policy; the records before it go first.
      if (slice.records.length === 0 && slice.skipped.length === 0) {
        slice.unsendable = { message: m, error };
        slice.last = m;
        slice.replicable = true;
        i++;
      }
      break;
    }
    let partsBytes = 0;
    for (const part of parts) partsBytes += part.size;
    // A record that alone exceeds the limit forms a slice of its own (several requests).
    if (slice.records.length > 0 && outBytes + partsBytes > sliceBytes) break; // the next slice's first
    if (parts.length > 1) slice.chunked++;
    slice.units.push({ message: m, first: slice.records.length, count: parts.length });
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
    const message: Message & WithHeaderList = {
      key: r.key,
      value: r.value,
      headers: r.headers as IHeaders,
      partition: r.partition,
    };
    if (r.headerList) message[HEADER_LIST] = r.headerList;
    if (r.timestamp !== undefined) message.timestamp = r.timestamp;
    chunk.push(message);
    size += s;
  }
  if (chunk.length > 0) requests.push(chunk);
  return requests;
}

/**
 * The produce requests of some units of a slice (in order, within the destination's batch limit), each
 * with the count of `units` complete once it is acknowledged (a chunked record may span requests).
 */
export function unitRequests(
  slice: Pick<Slice, "records" | "sizes">,
  units: readonly SliceUnit[],
  maxBatchBytes: number,
): { messages: Message[]; units: number }[] {
  const records: RecordLike[] = [];
  const sizes: number[] = [];
  /** Per record taken, the count of units complete with it. */
  const completes: number[] = [];
  units.forEach((unit, u) => {
    for (let k = 0; k < unit.count; k++) {
      records.push(slice.records[unit.first + k]!);
      sizes.push(slice.sizes[unit.first + k]!);
      completes.push(k === unit.count - 1 ? u + 1 : u);
    }
  });
  let taken = 0;
  return toRequests(records, sizes, maxBatchBytes).map((messages) => {
    taken += messages.length;
    return { messages, units: completes[taken - 1] ?? 0 };
  });
}
