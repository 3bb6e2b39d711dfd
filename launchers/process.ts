/**
 * Child processes that never outlive their parent.
 *
 * Every launcher (chains, Kafka brokers, the replicator and server in tests) starts its
 * processes through {@link startManaged}. Each process runs under `guard.sh`, which holds
 * the read end of a pipe whose write end only this Node process has. When this process
 * exits — normally, by an uncaught error, or by SIGKILL — the kernel closes the pipe and the
 * guard terminates the child's whole session. A clean {@link ManagedProcess.stop} uses the
 * same path, so there is exactly one way a managed process ends.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { fileURLToPath } from "node:url";
import { sleep } from "../common/time.js";
import { LaunchError } from "./errors.js";

const GUARD = fileURLToPath(new URL("./guard.sh", import.meta.url));

export interface ManagedOptions {
  /** Short name used in logs and errors, e.g. `chain-31337` or `kafka-dc1`. */
  name: string;
  command: string;
  args: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Where stdout and stderr go; kept in memory (last lines) either way. */
  logFile?: string;
  /** Seconds between SIGTERM and SIGKILL when stopping. */
  graceSeconds?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  /** Pid of the guard; the child runs under it as the leader of its own session. */
  readonly pid: number;
  /** Resolves when the guard (and with it the child) has exited. */
  readonly exited: Promise<ExitInfo>;
  /** True until the process exits. */
  running(): boolean;
  /** The last lines the process wrote (stdout and stderr interleaved). */
  tail(lines?: number): string;
  /** Stops the child (SIGTERM, then SIGKILL after the grace period) and waits for it. */
  stop(): Promise<ExitInfo>;
}

const TAIL_LINES = 200;

export function startManaged(options: ManagedOptions): ManagedProcess {
  const child: ChildProcess = spawn("bash", [GUARD, options.command, ...options.args], {
    cwd: options.cwd,
    env: { ...(options.env ?? process.env), LP_GUARD_GRACE: String(options.graceSeconds ?? 10) },
    stdio: ["pipe", "pipe", "pipe"],
  });
  if (child.pid === undefined) {
    throw new LaunchError("PROCESS_NOT_READY", `${options.name}: could not start ${options.command}`);
  }
  const pid = child.pid;
  const lines: string[] = [];
  let log: WriteStream | undefined;
  if (options.logFile) log = createWriteStream(options.logFile, { flags: "a" });
  let partial = "";
  const collect = (chunk: Buffer): void => {
    log?.write(chunk);
    const text = partial + chunk.toString("utf8");
    const parts = text.split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      lines.push(line);
      if (lines.length > TAIL_LINES) lines.shift();
    }
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  // The pipe to the guard must never keep this process alive nor crash it on EPIPE.
  child.stdin?.on("error", () => undefined);
  child.unref();
  (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
  (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();

  let alive = true;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once("exit", (code, signal) => {
      alive = false;
      log?.end();
      resolve({ code, signal });
    });
  });

  return {
    name: options.name,
    pid,
    exited,
    running: () => alive,
    tail: (n = 40) => lines.slice(-n).join("\n"),
    async stop() {
      if (alive) {
        child.ref(); // keep the event loop alive until the exit event arrives
        child.stdin?.end();
      }
      return exited;
    },
  };
}

export interface WaitOptions {
  /** What we wait for, for the error message. */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Fails fast when the process we wait for has died. */
  process?: ManagedProcess;
}

/** Polls `check` until it returns true; throws a descriptive error on timeout or process death. */
export async function waitUntil(check: () => Promise<boolean>, options: WaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 200;
  let lastError: unknown;
  for (;;) {
    if (options.process && !options.process.running()) {
      throw new LaunchError(
        "PROCESS_NOT_READY",
        `${options.what}: ${options.process.name} exited before it was ready\n${options.process.tail()}`,
      );
    }
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      const tail = options.process ? `\n${options.process.tail()}` : "";
      throw new LaunchError(
        "PROCESS_NOT_READY",
        `${options.what}: not ready after ${options.timeoutMs} ms${reason}${tail}`,
        { cause: lastError },
      );
    }
    await sleep(interval);
  }
}

/** True when a process with this pid exists (signal 0 probes without killing). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
