/**
 * The common guard of the replicator's kafkajs patches (./produce-encoding.ts, ./kafkajs-request-queue.ts,
 * ./kafkajs-transactions.ts): each replaces kafkajs internals process-wide, so each is installed only for
 * the kafkajs version it was verified against and can be switched off by an environment variable.
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/** The kafkajs version every patch was verified against (byte-equality and behaviour tests). */
export const VERIFIED_KAFKAJS_VERSION = "2.2.4";

/** Whether a patch is active in this process, and if not, why. */
export type PatchState = { active: true } | { active: false; reason: string };

/**
 * Runs `apply` unless `env[switchVar]` is `offValue` or the installed kafkajs is not the verified version;
 * returns `apply`'s state or the reason it did not run.
 */
export function installPatch(
  env: NodeJS.ProcessEnv,
  switchVar: string,
  offValue: string,
  apply: () => PatchState,
): PatchState {
  if (env[switchVar] === offValue) return { active: false, reason: `${switchVar}=${offValue}` };
  const version = (require("kafkajs/package.json") as { version: string }).version;
  if (version !== VERIFIED_KAFKAJS_VERSION) {
    return { active: false, reason: `kafkajs ${version} is not the verified ${VERIFIED_KAFKAJS_VERSION}` };
  }
  return apply();
}
