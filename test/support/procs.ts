/** Process inspection for tests that prove launchers leave nothing behind (Linux /proc). */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Pids of processes whose command line contains `needle`. */
export function processesMatching(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmdline.includes(needle)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** Polls until `check` holds or the timeout passes; returns whether it held. */
export async function eventually(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return check();
}

export interface LaunchedCli {
  child: ChildProcessWithoutNullStreams;
  /** The parsed `--json` ready line. */
  ready: Record<string, unknown>;
}

/** Runs the launcher CLI with `--json` and resolves once it printed its ready line. */
export async function launchCli(
  args: string[],
  timeoutMs = 120_000,
  options: { detached?: boolean } = {},
): Promise<LaunchedCli> {
  const child = spawn(process.execPath, ["--import", "tsx", "launchers/cli.ts", ...args, "--json"], {
    cwd: ROOT,
    env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: "1" },
    // Its own process group, so a test can signal the whole group as `timeout` or a shell does.
    detached: options.detached ?? false,
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout });
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`launcher not ready in ${timeoutMs} ms\n${stderr}`)),
      timeoutMs,
    );
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`launcher exited with ${code} before it was ready\n${stderr}`));
    });
    lines.on("line", (line) => {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (parsed.ready === true) {
          clearTimeout(timer);
          resolve(parsed);
        }
      } catch {
        // not our JSON line
      }
    });
  });
  return { child, ready };
}
