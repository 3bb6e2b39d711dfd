/**
 * Installs every kafkajs patch of the platform, once per process, from each process entry (the
 * replicator CLI, the licensing service, the bench, the engine worker thread, the test hooks).
 *
 * All or nothing: a kafkajs other than the verified version (or `LP_KAFKAJS_PATCHES=off`) leaves
 * kafkajs's own code in use everywhere, the direct producer included; the verified version with an
 * internal missing fails loudly instead of running half-patched. One patch can still be switched off on
 * purpose by its own variable (for comparisons in the bench).
 */
import type { Logger } from "pino";
import { KafkaError } from "../errors.js";
import { patchesRefused, type PatchState } from "../version.js";
import { installGroupBookkeeping } from "./group-bookkeeping.js";
import { installMetadataIndex } from "./metadata-index.js";
import { installFastProduceEncoding } from "./produce-encoding.js";
import { installProduceResults } from "./produce-results.js";
import { installRecordDecoding } from "./record-decoding.js";
import { installRequestQueueFix } from "./request-queue.js";
import { installTransactionFixes } from "./transactions.js";

export interface PatchReport {
  /** Why no patch is installed, when none is. */
  refused?: string;
  patches: { patch: string; state: PatchState }[];
}

/** The variable that switches one patch off on purpose (value `kafkajs`). */
const SWITCHES: Record<string, string> = {
  "fast produce encoding": "LP_KAFKAJS_ENCODER",
  "ordered header decoding": "LP_KAFKAJS_DECODER",
  "per-partition produce results": "LP_KAFKAJS_PRODUCE_RESULTS",
  "request queue fix": "LP_KAFKAJS_REQUEST_QUEUE",
  "transaction fixes": "LP_KAFKAJS_TRANSACTIONS",
  "topic metadata index": "LP_KAFKAJS_METADATA_INDEX",
  "linear group bookkeeping": "LP_KAFKAJS_GROUP_BOOKKEEPING",
};

/**
 * Installs the patches (idempotent). Throws `KAFKAJS_PATCH_FAILED` when the verified kafkajs lacks an
 * internal a patch needs; otherwise reports which are active and why the others are not.
 */
export function installKafkajsPatches(env: NodeJS.ProcessEnv = process.env): PatchReport {
  const refused = patchesRefused(env);
  const patches = [
    { patch: "fast produce encoding", state: installFastProduceEncoding(env) },
    { patch: "ordered header decoding", state: installRecordDecoding(env) },
    { patch: "per-partition produce results", state: installProduceResults(env) },
    { patch: "request queue fix", state: installRequestQueueFix(env) },
    { patch: "transaction fixes", state: installTransactionFixes(env) },
    { patch: "topic metadata index", state: installMetadataIndex(env) },
    { patch: "linear group bookkeeping", state: installGroupBookkeeping(env) },
  ];
  if (refused !== undefined) return { refused, patches };
  const broken = patches.filter(
    ({ patch, state }) => !state.active && state.reason !== `${SWITCHES[patch]}=kafkajs`,
  );
  if (broken.length > 0) {
    throw new KafkaError(
      "KAFKAJS_PATCH_FAILED",
      `kafkajs patches could not be installed: ${broken
        .map(({ patch, state }) => `${patch} (${state.active ? "" : state.reason})`)
        .join(", ")}`,
    );
  }
  return { patches };
}

/** Logs which patches are active (debug) and which are not and why (info). */
export function logPatchReport(report: PatchReport, logger: Logger): void {
  for (const { patch, state } of report.patches) {
    if (state.active) logger.debug({ patch }, "kafkajs patch active");
    else
      logger.info({ patch, reason: state.reason }, "kafkajs patch not installed; kafkajs's own code in use");
  }
}
