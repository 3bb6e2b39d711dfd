/**
 * A faster encoder for kafkajs produce requests.
 *
 * kafkajs 2.2.4 builds every record of a produce request out of many small `Encoder` objects and
 * computes the batch checksum (CRC-32C) byte by byte in JavaScript: about 45 µs per 1 KiB record on the
 * benchmark machine, most of the replicator's CPU time (docs/bench.md). This module writes the same
 * request (produce v3–v7: the record-batch v2 format) into one buffer in two passes (sizes, then bytes)
 * and takes the checksum from `@node-rs/crc32` (native CRC-32C).
 *
 * The bytes are identical to kafkajs's own: `test/kafka/produce-encoding.test.ts` compares them over
 * randomised requests. Two things kafkajs cannot do are added: headers in the order of a message's
 * ordered list (../headers.ts), and null header values. Whatever else this encoder does not handle
 * (compressed batches, values kafkajs would coerce or reject) goes to kafkajs's own encoder unchanged.

 *
 * `installFastProduceEncoding()` swaps kafkajs's produce v3 request module (v4–v7 delegate to it) for
 * this one, process-wide. It does so only for the exact kafkajs version it was verified against, and
 * `LP_KAFKAJS_ENCODER=kafkajs` turns it off.
 */
import { createRequire } from "node:module";
import { crc32c } from "@node-rs/crc32";
import { HEADER_LIST, type WithHeaderList } from "../headers.js";
import { utf8Length, writeUtf8 } from "../utf8.js";
import { installPatch, type PatchState } from "../version.js";

const require = createRequire(import.meta.url);

/** The kafkajs version whose produce request this module reproduces byte for byte. */
export { VERIFIED_KAFKAJS_VERSION } from "../version.js";
const V3_REQUEST = "kafkajs/src/protocol/requests/produce/v3/request.js";
/** Produce v4–v7 request modules capture the v3 module when they load. */
const LATER_REQUESTS = [4, 5, 6, 7].map((v) => `kafkajs/src/protocol/requests/produce/v${v}/request.js`);

interface KafkajsLong {
  getHighBits(): number;
  getLowBits(): number;
}
interface LongStatic {
  fromValue(value: unknown): KafkajsLong;
  fromInt(value: number): KafkajsLong;
}
interface KafkajsEncoder {
  buf: Buffer;
  offset: number;
  writeBuffer(buffer: Buffer): KafkajsEncoder;
  readonly buffer: Buffer;
}
export type EncoderConstructor = new (initialSize?: number) => KafkajsEncoder;

type HeaderInput = Buffer | string | null;
export interface ProduceMessage extends WithHeaderList {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: Record<string, HeaderInput | HeaderInput[] | undefined>;
  timestamp?: string | number;
}
export interface ProducePartition {
  partition: number;
  firstSequence?: number;
  messages: ProduceMessage[];
}
export interface ProduceTopic {
  topic: string;
  partitions: ProducePartition[];
}
export interface ProduceArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  compression?: number;
  topicData: ProduceTopic[];
}
export interface ProtocolRequest {
  apiKey: number;
  apiVersion: number;
  apiName: string;
  expectResponse: () => boolean;
  encode: () => Promise<KafkajsEncoder>;
}

export type ProduceRequestFactory = (args: ProduceArgs) => ProtocolRequest;

const MAGIC_V2 = 2;
const TRANSACTIONAL_BIT = 16;
const U32_HIGH_BITS = 0xffffff80;

/** kafkajs's Long, loaded on first use (after the version guard), not when this module is imported. */
let longModule: LongStatic | undefined;
const long = (): LongStatic => (longModule ??= require("kafkajs/src/utils/long.js") as LongStatic);

function zigZag32(value: number): number {
  return ((value << 1) ^ (value >> 31)) >>> 0;
}

function sizeOfVarInt(value: number): number {
  let v = zigZag32(value);
  let bytes = 1;
  while ((v & U32_HIGH_BITS) !== 0) {
    bytes++;
    v >>>= 7;
  }
  return bytes;
}

function writeVarInt(buf: Buffer, offset: number, value: number): number {
  let v = zigZag32(value);
  while ((v & U32_HIGH_BITS) !== 0) {
    buf[offset++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[offset++] = v & 0x7f;
  return offset;
}

/** Zig-zag of a safe integer as a non-negative JS number (exact below 2^52). */
function zigZag64(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

function sizeOfVarLong(value: number): number {
  let v = zigZag64(value);
  let bytes = 1;
  while (v >= 128) {
    bytes++;
    v = Math.floor(v / 128);
  }
  return bytes;
}

function writeVarLong(buf: Buffer, offset: number, value: number): number {
  let v = zigZag64(value);
  while (v >= 128) {
    buf[offset++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[offset++] = v;
  return offset;
}

function writeInt64(buf: Buffer, offset: number, value: unknown): number {
  const int64 = long().fromValue(value);
  buf.writeInt32BE(int64.getHighBits(), offset);
  buf.writeInt32BE(int64.getLowBits(), offset + 4);
  return offset + 8;
}

function byteLength(value: Buffer | string): number {
  return typeof value === "string" ? utf8Length(value) : value.length;
}

function writeBytesAt(buf: Buffer, offset: number, value: Buffer | string, length: number): number {
  if (typeof value === "string") return writeUtf8(buf, offset, value, length);
  value.copy(buf, offset);
  return offset + length;
}

/** A header or record field as kafkajs writes it: null → length -1, else varint length + bytes. */
function isPlainBytes(value: unknown): value is Buffer | string | null {
  return value === null || typeof value === "string" || Buffer.isBuffer(value);
}

interface PlannedRecord {
  bodySize: number;
  timestampDelta: number;
  key: Buffer | string | null;
  value: Buffer | string | null;
  /** Per header: name, name length, value, value length (-1: null). */
  headers: (string | Buffer | number | null)[];
}

/** Adds one header to a record's plan; returns its encoded size. */
function planHeader(
  headers: (string | Buffer | number | null)[],
  name: string,
  value: Buffer | string | null,
): number {
  const nameSize = utf8Length(name);
  const size = value === null ? -1 : byteLength(value);
  headers.push(name, nameSize, value, size);
  return sizeOfVarInt(nameSize) + nameSize + sizeOfVarInt(size) + Math.max(0, size);
}

interface PlannedPartition {
  partition: number;
  firstSequence: number;
  firstTimestamp: unknown;
  maxTimestamp: unknown;
  records: PlannedRecord[];
  batchSize: number;
}

function planPartition(data: ProducePartition, dateNow: number): PlannedPartition | undefined {
  const { messages } = data;
  // kafkajs's own choice of first and max timestamp, including its lexicographic sort.
  const stamps = messages
    .map((m) => m.timestamp)
    .filter((t) => t != null)
    .sort();
  const timestamps: unknown[] = stamps.length === 0 ? [dateNow] : stamps;
  const firstTimestamp = timestamps[0];
  const maxTimestamp = timestamps[timestamps.length - 1];
  const records: PlannedRecord[] = [];
  let recordsSize = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const key = m.key ?? null;
    const value = m.value;
    if (!isPlainBytes(key) || !isPlainBytes(value)) return undefined;
    const timestampDelta = ((m.timestamp || dateNow) as number) - (firstTimestamp as number);
    if (!Number.isSafeInteger(timestampDelta) || Math.abs(timestampDelta) >= 2 ** 51) return undefined;
    // Flat: name, its UTF-8 length, value, its length — measured once, written with these lengths.
    // The ordered list when the message has one (../headers.ts), else the object in key order. A null
    // value is written as Kafka allows (length -1), where kafkajs's own encoder throws a TypeError.
    const headers: (string | Buffer | number | null)[] = [];
    let headersSize = 0;
    const list = m[HEADER_LIST];
    if (list) {
      for (const [name, v] of list) {
        if (typeof name !== "string" || !isPlainBytes(v)) return undefined;
        headersSize += planHeader(headers, name, v);
      }
    } else if (m.headers) {
      for (const name of Object.keys(m.headers)) {
        const raw = m.headers[name];
        if (raw === undefined) return undefined; // kafkajs's own error
        for (const v of Array.isArray(raw) ? raw : [raw]) {
          if (!isPlainBytes(v)) return undefined;
          headersSize += planHeader(headers, name, v);
        }
      }
    }
    const keySize = key === null ? -1 : byteLength(key);
    const valueSize = value === null ? -1 : byteLength(value);
    const bodySize =
      1 +
      sizeOfVarLong(timestampDelta) +
      sizeOfVarInt(i) +
      sizeOfVarInt(keySize) +
      Math.max(0, keySize) +
      sizeOfVarInt(valueSize) +
      Math.max(0, valueSize) +
      sizeOfVarInt(headers.length / 4) +
      headersSize;
    records.push({ bodySize, timestampDelta, key, value, headers });
    recordsSize += sizeOfVarInt(bodySize) + bodySize;
  }
  // firstOffset 8 + length 4 + leader epoch 4 + magic 1 + crc 4 + header body 36 + record count 4.
  const batchSize = 8 + 4 + 4 + 1 + 4 + 36 + 4 + recordsSize;
  return {
    partition: data.partition,
    firstSequence: data.firstSequence ?? 0,
    firstTimestamp,
    maxTimestamp,
    records,
    batchSize,
  };
}

function writeField(buf: Buffer, offset: number, value: Buffer | string | null): number {
  if (value === null) return writeVarInt(buf, offset, -1);
  const size = byteLength(value);
  offset = writeVarInt(buf, offset, size);
  return writeBytesAt(buf, offset, value, size);
}

function writeBatch(
  buf: Buffer,
  offset: number,
  part: PlannedPartition,
  args: { transactional: boolean; producerId: unknown; producerEpoch: number },
): number {
  const start = offset;
  offset = writeInt64(buf, offset, 0); // first offset (assigned by the broker)
  buf.writeInt32BE(part.batchSize - 12, offset); // length of what follows
  offset += 4;
  buf.writeInt32BE(0, offset); // partition leader epoch
  offset += 4;
  buf.writeInt8(MAGIC_V2, offset);
  offset += 1;
  const crcAt = offset;
  offset += 4;
  const bodyStart = offset;
  buf.writeInt16BE(args.transactional ? TRANSACTIONAL_BIT : 0, offset); // no compression, create time
  offset += 2;
  buf.writeInt32BE(part.records.length - 1, offset); // last offset delta
  offset += 4;
  offset = writeInt64(buf, offset, part.firstTimestamp);
  offset = writeInt64(buf, offset, part.maxTimestamp);
  offset = writeInt64(buf, offset, args.producerId);
  buf.writeInt16BE(args.producerEpoch, offset);
  offset += 2;
  buf.writeInt32BE(part.firstSequence, offset);
  offset += 4;
  buf.writeInt32BE(part.records.length, offset);
  offset += 4;
  for (let i = 0; i < part.records.length; i++) {
    const r = part.records[i]!;
    offset = writeVarInt(buf, offset, r.bodySize);
    buf[offset++] = 0; // record attributes
    offset = writeVarLong(buf, offset, r.timestampDelta);
    offset = writeVarInt(buf, offset, i);
    offset = writeField(buf, offset, r.key);
    offset = writeField(buf, offset, r.value);
    const h = r.headers;
    offset = writeVarInt(buf, offset, h.length / 4);
    for (let j = 0; j < h.length; j += 4) {
      const nameSize = h[j + 1] as number;
      offset = writeVarInt(buf, offset, nameSize);
      offset = writeUtf8(buf, offset, h[j] as string, nameSize);
      const size = h[j + 3] as number;
      offset = writeVarInt(buf, offset, size);
      if (size >= 0) offset = writeBytesAt(buf, offset, h[j + 2] as Buffer | string, size);
    }
  }
  buf.writeUInt32BE(crc32c(buf.subarray(bodyStart, offset)), crcAt);
  if (offset - start !== part.batchSize) {
    throw new Error(`produce encoder: batch size ${offset - start} != planned ${part.batchSize}`);
  }
  return offset;
}

function sizeOfString(value: string | null): number {
  return 2 + (value === null ? 0 : Buffer.byteLength(value, "utf8"));
}

function writeString(buf: Buffer, offset: number, value: string | null): number {
  if (value === null) {
    buf.writeInt16BE(-1, offset);
    return offset + 2;
  }
  const size = Buffer.byteLength(value, "utf8");
  buf.writeInt16BE(size, offset);
  buf.write(value, offset + 2, size, "utf8");
  return offset + 2 + size;
}

/**
 * The body of a produce request (v3–v7, uncompressed) exactly as kafkajs 2.2.4 encodes it, or undefined
 * when the request needs kafkajs's own encoder (compression, or values kafkajs would coerce or reject).
 */
export function encodeProduceRequestBody(
  args: ProduceArgs,
  dateNow: number = Date.now(),
): Buffer | undefined {
  if ((args.compression ?? 0) !== 0) return undefined;
  const transactionalId = args.transactionalId ?? null;
  const producerId = args.producerId ?? long().fromInt(-1);
  const producerEpoch = args.producerEpoch ?? 0;
  const planned: { topic: string; partitions: PlannedPartition[] }[] = [];
  let size = sizeOfString(transactionalId) + 2 + 4 + 4;
  for (const t of args.topicData) {
    const partitions: PlannedPartition[] = [];
    size += sizeOfString(t.topic) + 4;
    for (const p of t.partitions) {
      const part = planPartition(p, dateNow);
      if (!part) return undefined;
      partitions.push(part);
      size += 4 + 4 + part.batchSize;
    }
    planned.push({ topic: t.topic, partitions });
  }
  const buf = Buffer.allocUnsafe(size);
  let offset = writeString(buf, 0, transactionalId);
  buf.writeInt16BE(args.acks, offset);
  offset += 2;
  buf.writeInt32BE(args.timeout, offset);
  offset += 4;
  buf.writeInt32BE(planned.length, offset);
  offset += 4;
  const batchArgs = { transactional: !!transactionalId, producerId, producerEpoch };
  for (const t of planned) {
    offset = writeString(buf, offset, t.topic);
    buf.writeInt32BE(t.partitions.length, offset);
    offset += 4;
    for (const part of t.partitions) {
      buf.writeInt32BE(part.partition, offset);
      buf.writeInt32BE(part.batchSize, offset + 4);
      offset = writeBatch(buf, offset + 8, part, batchArgs);
    }
  }
  if (offset !== size) throw new Error(`produce encoder: request size ${offset} != planned ${size}`);
  return buf;
}

/** Wraps kafkajs's produce v3 request factory: same request, the fast encoder when it applies. */
export function fastProduceRequest(
  original: ProduceRequestFactory,
  Encoder: EncoderConstructor,
): ProduceRequestFactory {
  return (args) => {
    const fallback = original(args);
    return {
      ...fallback,
      encode: async () => {
        const body = encodeProduceRequestBody(args);
        if (!body) return fallback.encode();
        // An Encoder over the body itself (kafkajs reads `buf` and `offset`), not a zero-filled copy of it.
        const encoder = new Encoder(0);
        encoder.buf = body;
        encoder.offset = body.length;
        return encoder;
      },
    };
  };
}

export type FastEncodingState = PatchState;

let installed: FastEncodingState | undefined;

/** kafkajs's own produce v3 request factory (the reference for the byte-equality test). */
export function kafkajsProduceRequest(): ProduceRequestFactory {
  return require(V3_REQUEST) as ProduceRequestFactory;
}

/**
 * Makes every kafkajs producer in this process encode produce requests with the fast encoder.
 * Idempotent; returns whether it is active and, if not, why.
 */
export function installFastProduceEncoding(env: NodeJS.ProcessEnv = process.env): FastEncodingState {
  installed ??= installPatch(env, "LP_KAFKAJS_ENCODER", "kafkajs", () => {
    const path = require.resolve(V3_REQUEST);
    const original = require(path) as ProduceRequestFactory;
    const Encoder = require("kafkajs/src/protocol/encoder.js") as EncoderConstructor;
    const cached = require.cache[path];
    if (!cached || typeof original !== "function") {
      return { active: false, reason: "kafkajs produce request module not found" };
    }
    cached.exports = fastProduceRequest(original, Encoder);
    // Later versions bind the v3 module when they load: reload them so they bind the new one.
    for (const later of LATER_REQUESTS) delete require.cache[require.resolve(later)];
    return { active: true };
  });
  return installed;
}
