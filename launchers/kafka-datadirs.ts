/** Data dirs of launched brokers, and the sweep of those that killed launchers left behind. */
import { readdirSync, readFileSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pidAlive } from "./process.js";

export const DATA_DIR_PREFIX = "lp-kafka-";

export const OWNER_FILE = "launcher.pid";

/** True when some process has `needle` in its command line (Linux /proc; false elsewhere). */
function anyProcessMentions(needle: string): boolean {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return false;
  }
  return entries.some((entry) => {
    if (!/^\d+$/.test(entry)) return false;
    try {
      return readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(needle);
    } catch {
      return false;
    }
  });
}

/**
 * Deletes data dirs left behind by launchers that were killed (SIGKILL leaves no chance to clean up;
 * the guard still ends their brokers): dirs under `baseDir` whose launcher pid is dead and that no
 * process uses. Best effort; returns the dirs deleted.
 */
export async function sweepStaleDataDirs(baseDir: string = tmpdir()): Promise<string[]> {
  const deleted: string[] = [];
  let entries: string[];
  try {
    entries = (await readdir(baseDir)).filter((entry) => entry.startsWith(DATA_DIR_PREFIX));
  } catch {
    return deleted;
  }
  for (const entry of entries) {
    const dir = join(baseDir, entry);
    try {
      const owner = Number((await readFile(join(dir, OWNER_FILE), "utf8")).trim());
      if (!Number.isInteger(owner) || owner <= 0 || pidAlive(owner) || anyProcessMentions(dir)) continue;
      await rm(dir, { recursive: true, force: true });
      deleted.push(dir);
    } catch {
      // not ours (no owner file), or in use
    }
  }
  return deleted;
}
