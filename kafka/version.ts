/**
 * The one version guard of the kafkajs patches (./patches/): each replaces kafkajs internals
 * process-wide, so each is installed only for the kafkajs version it was verified against, and each can
 * be switched off by an environment variable. `LP_KAFKAJS_PATCHES=off` switches them all off.
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/** The kafkajs version every patch was verified against (byte-equality and behaviour tests). */
export const VERIFIED_KAFKAJS_VERSION = "2.2.4";

/** Whether a patch is active in this process, and if not, why. */
export type PatchState = { active: true } | { active: false; reason: string };

/** The installed kafkajs version. */
export function installedKafkajsVersion(): string {
  return (require("kafkajs/package.json") as { version: string }).version;
}

/**
 * Why kafkajs internals must not be touched in this process, or undefined when they may: every patch
 * switched off, or a kafkajs version other than the verified one.
 */
export function patchesRefused(
  env: NodeJS.ProcessEnv,
  version: string = installedKafkajsVersion(),
): string | undefined {
  if (env.LP_KAFKAJS_PATCHES === "off") return "LP_KAFKAJS_PATCHES=off";
  if (version !== VERIFIED_KAFKAJS_VERSION) {
    return `kafkajs ${version} is not the verified ${VERIFIED_KAFKAJS_VERSION}`;
  }
  return undefined;
}

/**
 * Runs `apply` unless `env[switchVar]` is `offValue` or {@link patchesRefused}; returns `apply`'s state
 * or the reason it did not run.
 */
export function installPatch(
  env: NodeJS.ProcessEnv,
  switchVar: string,
  offValue: string,
  apply: () => PatchState,
): PatchState {
  if (env[switchVar] === offValue) return { active: false, reason: `${switchVar}=${offValue}` };
  const refused = patchesRefused(env);
  if (refused !== undefined) return { active: false, reason: refused };
  return apply();
}
