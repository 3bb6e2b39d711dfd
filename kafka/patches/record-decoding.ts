/**
 * kafkajs 2.2.4's record decoder with the headers kept in order.
 *
 * kafkajs folds a record's headers into an object with a reduce that copies the object for every
 * header (quadratic: a record with 5,000 headers takes seconds) and reads `obj[name]` through the
 * prototype, so a header named `toString` or `constructor` comes out as `[function, value]`. Repeated
 * names become arrays, which loses the order `a=1, b=2, a=3`. This decoder reads the same fields, builds
 * the same object linearly from own properties, and attaches the headers as an ordered list under
 * `HEADER_LIST` (../headers.ts) — what the replicator writes to the destination.
 *
 * Installed by replacing kafkajs's record decoder module before any fetch response module binds it (they
 * load on the first fetch); `LP_KAFKAJS_DECODER=kafkajs` keeps kafkajs's own.
 */
import { createRequire } from "node:module";
import { HEADER_LIST, headerObjectOf, type HeaderEntry } from "../headers.js";
import { installPatch, type PatchState } from "../version.js";

const require = createRequire(import.meta.url);
const RECORD_DECODER = "kafkajs/src/protocol/recordBatch/record/v0/decoder.js";
/** The modules that bind the record decoder when they load (reloaded if one already has). */
const BINDERS = [
  "kafkajs/src/protocol/recordBatch/v0/decoder.js",
  "kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js",
  ...[4, 5, 6, 7, 8, 9, 10, 11].map((v) => `kafkajs/src/protocol/requests/fetch/v${v}/response.js`),
];

/** The part of kafkajs's Decoder the record decoder reads with. */
export interface KafkajsDecoder {
  readInt8(): number;
  readVarInt(): number;
  readVarLong(): { toString(): string };
  readVarIntBytes(): Buffer | null;
  readVarIntString(): string;
  readVarIntArray<T>(reader: (decoder: KafkajsDecoder) => T): T[];
}
interface LongStatic {
  fromValue(value: unknown): { add(other: unknown): { toString(): string } };
}
interface BatchContext {
  firstOffset?: string;
  firstTimestamp?: string;
  magicByte?: number;
  isControlBatch?: boolean;
  timestampType?: number;
  maxTimestamp?: string;
}

/** kafkajs's TimestampTypes.LOG_APPEND_TIME. */
const LOG_APPEND_TIME = 1;

const readHeader = (decoder: KafkajsDecoder): HeaderEntry => [
  decoder.readVarIntString(),
  decoder.readVarIntBytes(),
];

/** The record decoder (kafkajs's fields and values, headers in order). */
export function createRecordDecoder(Long: LongStatic) {
  return (decoder: KafkajsDecoder, batchContext: BatchContext = {}) => {
    const {
      firstOffset,
      firstTimestamp,
      magicByte,
      isControlBatch = false,
      timestampType,
      maxTimestamp,
    } = batchContext;
    const attributes = decoder.readInt8();
    const timestampDelta = decoder.readVarLong();
    const timestamp =
      timestampType === LOG_APPEND_TIME && maxTimestamp
        ? maxTimestamp
        : Long.fromValue(firstTimestamp).add(timestampDelta).toString();
    const offsetDelta = decoder.readVarInt();
    const offset = Long.fromValue(firstOffset).add(offsetDelta).toString();
    const key = decoder.readVarIntBytes();
    const value = decoder.readVarIntBytes();
    const list = decoder.readVarIntArray(readHeader);
    return {
      magicByte,
      attributes,
      timestamp,
      offset,
      key,
      value,
      headers: headerObjectOf(list),
      [HEADER_LIST]: list,
      isControlRecord: isControlBatch,
      batchContext,
    };
  };
}

let installed: PatchState | undefined;

/** Makes every kafkajs consumer in this process decode records with {@link createRecordDecoder}. */
export function installRecordDecoding(env: NodeJS.ProcessEnv = process.env): PatchState {
  installed ??= installPatch(env, "LP_KAFKAJS_DECODER", "kafkajs", () => {
    const path = require.resolve(RECORD_DECODER);
    const original = require(path) as unknown;
    const cached = require.cache[path];
    if (!cached || typeof original !== "function") {
      return { active: false, reason: "kafkajs record decoder module not found" };
    }
    cached.exports = createRecordDecoder(require("kafkajs/src/utils/long.js") as LongStatic);
    for (const binder of BINDERS) delete require.cache[require.resolve(binder)];
    return { active: true };
  });
  return installed;
}
