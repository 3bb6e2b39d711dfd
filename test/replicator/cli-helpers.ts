/** The replicator CLI as a child process, for tests: start it, wait for it to run, read its log lines. */
import { spawn, type ChildProcess } from "node:child_process";
import { ROOT } from "../support/procs.js";

const children: ChildProcess[] = [];

export function runCli(args: string[]): ChildProcess & { output: { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, ["--import", "tsx", "replicator/cli.ts", ...args], {
    cwd: ROOT,
    env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  }) as ChildProcess & { output: { stdout: string; stderr: string } };
  child.output = { stdout: "", stderr: "" };
  child.stdout?.on("data", (d: Buffer) => (child.output.stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (child.output.stderr += d.toString()));
  children.push(child);
  return child;
}

export function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

/** Resolves when the replicator logged that it runs (its first discovery round is done). */
export function running(
  child: ChildProcess & { output: { stdout: string } },
  timeoutMs = 30_000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (child.output.stdout.includes('"msg":"replicator running"')) {
        done();
        resolve();
      }
    };
    const onExit = () => {
      done();
      reject(new Error(`replicator exited before running: ${child.output.stdout}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error("replicator did not start"));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      child.stdout?.off("data", check);
      child.off("exit", onExit);
    };
    // A listener only: reading stays with runCli's collector, so the child's stdout never backs up.
    child.stdout?.on("data", check);
    child.once("exit", onExit);
    check();
  });
}

/** The replicator's JSON log lines (pino). */
export function logLines(stdout: string): { msg?: string; worker?: number; [k: string]: unknown }[] {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { msg?: string; worker?: number });
}

/** SIGKILLs every child still running (afterEach). */
export async function killChildren(): Promise<void> {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exitOf(child);
    }
  }
}
