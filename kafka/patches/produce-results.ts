/**
 * Every partition's outcome of a produce request, for the direct producer (../direct-producer.ts).
 *
 * kafkajs 2.2.4's produce response `parse` throws the error of the first failed partition, so a
 * request carrying several partitions says nothing about the others (the broker wrote them). A request
 * whose `topicData` array carries {@link PARTITION_RESULTS} gets the decoded response back instead,
 * with each partition's error code, and the caller settles each partition on its own: one partition
 * that fails is retried or reported alone, the others are not sent again.
 *
 * The same for ListOffsets (`topics` marked): the batched watermark reads (../reader.ts) ask thousands
 * of partitions at once, and one new topic not ready yet would fail the request for all of them (and
 * kafkajs would log an error line per such answer).
 *
 * Installed by wrapping kafkajs's produce and list-offsets request lookups (`requests/produce/index.js`,
 * `requests/listOffsets/index.js`, `protocol`), only for the verified version;
 * `LP_KAFKAJS_PRODUCE_RESULTS=kafkajs` keeps kafkajs's parse.
 */
import { createRequire } from "node:module";
import { installPatch, type PatchState } from "../version.js";

const require = createRequire(import.meta.url);
const PRODUCE_REQUESTS = "kafkajs/src/protocol/requests/produce/index.js";
const LIST_OFFSETS_REQUESTS = "kafkajs/src/protocol/requests/listOffsets/index.js";

/** Marks a produce request's `topicData` array: its response has every partition's error code. */
export const PARTITION_RESULTS: unique symbol = Symbol.for(
  "license-platform.kafka.partitionResults",
) as never;

interface ProduceResponse {
  decode: (data: Buffer) => Promise<unknown>;
  parse: (data: unknown) => Promise<unknown>;
}
type ProduceVersion = (args: { topicData?: unknown; topics?: unknown }) => {
  request: unknown;
  response: ProduceResponse;
};
interface ProduceRequests {
  versions: string[];
  protocol: (args: { version: number | string }) => ProduceVersion;
}

/** A `topicData` (produce) or `topics` (list offsets) array marked for {@link PARTITION_RESULTS}. */
export function withPartitionResults<T extends object[]>(topicData: T): T {
  Object.defineProperty(topicData, PARTITION_RESULTS, { value: true });
  return topicData;
}

function wantsPartitionResults(topicData: unknown): boolean {
  return (
    Array.isArray(topicData) && (topicData as { [PARTITION_RESULTS]?: boolean })[PARTITION_RESULTS] === true
  );
}

/** kafkajs's produce (or list-offsets) lookup, answering marked requests with the decoded response (no throw). */
export function partitionResultsProtocol(
  original: ProduceRequests["protocol"],
  field: "topicData" | "topics" = "topicData",
): ProduceRequests["protocol"] {
  return (lookup) => {
    const make = original(lookup);
    return (args) => {
      const pair = make(args);
      if (!wantsPartitionResults(args[field])) return pair;
      return { ...pair, response: { ...pair.response, parse: async (data: unknown) => data } };
    };
  };
}

let installed: PatchState | undefined;

/** Whether marked produce requests get every partition's outcome in this process. */
export function partitionResultsActive(): boolean {
  return installed?.active === true;
}

/** Installs {@link partitionResultsProtocol} (idempotent); returns whether it is active and why not. */
export function installProduceResults(env: NodeJS.ProcessEnv = process.env): PatchState {
  installed ??= installPatch(env, "LP_KAFKAJS_PRODUCE_RESULTS", "kafkajs", () => {
    const requests = require(PRODUCE_REQUESTS) as Partial<ProduceRequests> | undefined;
    const listOffsets = require(LIST_OFFSETS_REQUESTS) as Partial<ProduceRequests> | undefined;
    if (typeof requests?.protocol !== "function") {
      return { active: false, reason: "kafkajs produce request lookup not found" };
    }
    if (typeof listOffsets?.protocol !== "function") {
      return { active: false, reason: "kafkajs list-offsets request lookup not found" };
    }
    requests.protocol = partitionResultsProtocol(requests.protocol);
    listOffsets.protocol = partitionResultsProtocol(listOffsets.protocol, "topics");
    return { active: true };
  });
  return installed;
}
