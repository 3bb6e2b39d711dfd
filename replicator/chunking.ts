/**
 * Long records: a record larger than the destination accepts is split into chunks that carry
 * `lp.chunk.id`, `lp.chunk.index` and `lp.chunk.count`; consumers put them back together with
 * `Reassembler`. Chunks of one record share key and partition and are written in order.
 */
import { randomUUID } from "node:crypto";
import { ChunkError } from "./errors.js";
import { headerString, type Headers } from "./policy.js";
import type { HeaderList } from "../kafka/headers.js";
import { utf8Length } from "../kafka/utf8.js";

export const CHUNK_HEADERS = {
  id: "lp.chunk.id",
  index: "lp.chunk.index",
  count: "lp.chunk.count",
} as const;

/** Per-record and per-header framing allowance (varints, attributes, deltas), generous on purpose. */
const RECORD_OVERHEAD = 64;
const HEADER_OVERHEAD = 8;

export interface RecordLike {
  key: Buffer | null;
  value: Buffer | null;
  headers?: Headers;
  /** The headers in order, as written to the destination when present (../kafka/headers.ts). */
  headerList?: HeaderList;
  timestamp?: string;
  partition?: number;
}

function bytesOf(value: Buffer | string | null): number {
  return value === null ? 0 : typeof value === "string" ? utf8Length(value) : value.length;
}

function headerBytes(headers: Headers | undefined, list: HeaderList | undefined): number {
  let n = 0;
  if (list) {
    for (const [name, value] of list) n += utf8Length(name) + HEADER_OVERHEAD + bytesOf(value);
    return n;
  }
  if (!headers) return n;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const nameBytes = utf8Length(name) + HEADER_OVERHEAD;
    if (Array.isArray(value)) for (const v of value) n += nameBytes + bytesOf(v);
    else n += nameBytes + bytesOf(value);
  }
  return n;
}

/** An upper estimate of the bytes a record takes in a record batch. */
export function recordSize(record: RecordLike): number {
  return (
    (record.key?.length ?? 0) +
    (record.value?.length ?? 0) +
    headerBytes(record.headers, record.headerList) +
    RECORD_OVERHEAD
  );
}

/**
 * Splits a record whose estimated size exceeds `maxBytes` into chunks each within `maxBytes`.
 * A record that fits is returned unchanged (as the only element).
 */
export function splitRecord(record: RecordLike, maxBytes: number, chunkId?: string): RecordLike[] {
  return splitRecordSized(record, maxBytes, chunkId).map((part) => part.record);
}

/** `splitRecord` with the estimated size (`recordSize`) of every part, computed once, for the sender. */
export function splitRecordSized(
  record: RecordLike,
  maxBytes: number,
  chunkId?: string,
): { record: RecordLike; size: number }[] {
  const size = recordSize(record);
  if (size <= maxBytes || record.value === null) return [{ record, size }];
  return chunksOf(record, record.value, maxBytes, chunkId ?? randomUUID()).map((part) => ({
    record: part,
    size: recordSize(part),
  }));
}

function chunksOf(record: RecordLike, value: Buffer, maxBytes: number, id: string): RecordLike[] {
  const chunkHeaders = (index: number, count: number): Headers => ({
    ...(record.headers ?? {}),
    [CHUNK_HEADERS.id]: id,
    [CHUNK_HEADERS.index]: String(index),
    [CHUNK_HEADERS.count]: String(count),
  });
  const chunkList = (index: number, count: number): HeaderList | undefined =>
    record.headerList && [
      ...record.headerList,
      [CHUNK_HEADERS.id, Buffer.from(id)],
      [CHUNK_HEADERS.index, Buffer.from(String(index))],
      [CHUNK_HEADERS.count, Buffer.from(String(count))],
    ];
  // Fixed part of every chunk: key, headers (with the widest chunk headers) and framing.
  const widest = { headers: chunkHeaders(999_999, 999_999), headerList: chunkList(999_999, 999_999) };
  const fixed = recordSize({ key: record.key, value: null, ...widest });
  const room = maxBytes - fixed;
  if (room < 1) {
    throw new ChunkError(
      `record key and headers alone (${fixed} bytes) exceed the limit of ${maxBytes} bytes`,
    );
  }
  const count = Math.ceil(value.length / room);
  const chunks: RecordLike[] = [];
  for (let i = 0; i < count; i++) {
    const chunk: RecordLike = {
      key: record.key,
      value: value.subarray(i * room, Math.min(value.length, (i + 1) * room)),
      headers: chunkHeaders(i, count),
    };
    const list = chunkList(i, count);
    if (list) chunk.headerList = list;
    if (record.timestamp !== undefined) chunk.timestamp = record.timestamp;
    if (record.partition !== undefined) chunk.partition = record.partition;
    chunks.push(chunk);
  }
  return chunks;
}

interface Pending {
  count: number;
  parts: (Buffer | undefined)[];
  received: number;
  first: RecordLike;
}

/**
 * Consumer-side helper: feed every consumed record to `push`; it returns the record to hand to the
 * application (an ordinary record as is, a reassembled one when its last chunk arrives) or undefined
 * while chunks are still missing.
 */
export class Reassembler {
  private readonly pending = new Map<string, Pending>();

  push(record: RecordLike): RecordLike | undefined {
    const id = headerString(record.headers, CHUNK_HEADERS.id);
    if (id === undefined) return record;
    const index = Number(headerString(record.headers, CHUNK_HEADERS.index));
    const count = Number(headerString(record.headers, CHUNK_HEADERS.count));
    if (!Number.isInteger(index) || !Number.isInteger(count) || count < 1 || index < 0 || index >= count) {
      throw new ChunkError(`chunk ${id}: bad index/count ${index}/${count}`);
    }
    if (record.value === null) throw new ChunkError(`chunk ${id}#${index}: null value`);
    let entry = this.pending.get(id);
    if (!entry) {
      entry = {
        count,
        parts: new Array<Buffer | undefined>(count).fill(undefined),
        received: 0,
        first: record,
      };
      this.pending.set(id, entry);
    }
    if (entry.count !== count)
      throw new ChunkError(`chunk ${id}: count changed from ${entry.count} to ${count}`);
    if (entry.parts[index] === undefined) {
      // A re-delivered chunk (at-least-once) is ignored.
      entry.parts[index] = record.value;
      entry.received++;
    }
    if (index === 0) entry.first = record;
    if (entry.received < count) return undefined;
    this.pending.delete(id);
    const headers: Headers = { ...(entry.first.headers ?? {}) };
    delete headers[CHUNK_HEADERS.id];
    delete headers[CHUNK_HEADERS.index];
    delete headers[CHUNK_HEADERS.count];
    const whole: RecordLike = {
      key: entry.first.key,
      value: Buffer.concat(entry.parts as Buffer[]),
      headers,
    };
    if (entry.first.timestamp !== undefined) whole.timestamp = entry.first.timestamp;
    if (entry.first.partition !== undefined) whole.partition = entry.first.partition;
    return whole;
  }

  /** Number of records with chunks still missing. */
  get incomplete(): number {
    return this.pending.size;
  }
}
