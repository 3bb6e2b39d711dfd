/**
 * Driving docker-compose.yml from a test: a Docker engine (started here when none answers and we may),
 * the Compose command (v2 `docker compose` if present, else v1 `docker-compose`), bounded waits whose
 * failures name the service and show its log tail, and a clean-up that leaves nothing of the project.
 * Every command has a timeout; nothing talks to anything but the local engine and 127.0.0.1.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./procs.js";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (killed after `timeoutMs`); never throws, the caller reads `code`. */
export function run(
  command: string,
  args: string[],
  options: { timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd ?? ROOT,
        env: options.env ?? process.env,
        timeout: options.timeoutMs,
        killSignal: "SIGKILL",
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        const killed = error && (error as { killed?: boolean }).killed;
        resolve({
          code,
          stdout,
          stderr: killed ? `${stderr}\n(killed after ${options.timeoutMs} ms)` : stderr,
        });
      },
    );
  });
}

function which(command: string): string | undefined {
  const found = spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

function tail(text: string, lines = 30): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** Why no Docker engine can be had here, or undefined when one can (running, or startable as root). */
export async function engineUnavailable(): Promise<string | undefined> {
  if (!which("docker")) return "no `docker` command (the set-up installs docker.io when run as root)";
  if ((await run("docker", ["info"], { timeoutMs: 20_000 })).code === 0) return undefined;
  if (!which("dockerd")) return "no Docker engine answers and there is no `dockerd` to start";
  if (os.userInfo().uid !== 0) return "no Docker engine answers and starting `dockerd` needs root";
  return undefined;
}

export interface Engine {
  /** True when this process started dockerd (and stops it in `stop`). */
  started: boolean;
  stop(): Promise<void>;
}

/**
 * The running engine, or a `dockerd --iptables=false` started now (its log in $TMPDIR); `stop` ends only
 * the dockerd started here: SIGTERM, then SIGKILL after 30 s.
 */
export async function ensureEngine(log: (line: string) => void): Promise<Engine> {
  if ((await run("docker", ["info"], { timeoutMs: 20_000 })).code === 0) {
    return { started: false, stop: async () => undefined };
  }
  const logDir = path.join(os.tmpdir(), "lp-compose-test");
  mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, "dockerd.log");
  const fd = openSync(logFile, "a");
  // --iptables=false: containers reach each other and the published loopback ports, nothing outside.
  const child: ChildProcess = spawn("dockerd", ["--iptables=false"], {
    detached: true,
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  log(`started dockerd --iptables=false (pid ${child.pid}, log ${logFile})`);
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
    log("stopped the dockerd started by this test");
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if ((await run("docker", ["info"], { timeoutMs: 10_000 })).code === 0) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      const { stdout } = await run("tail", ["-n", "20", logFile], { timeoutMs: 5_000 });
      throw new Error(`dockerd did not answer within 60 s; last lines of ${logFile}:\n${stdout}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return { started: true, stop };
}

/** `docker compose` (v2) when the plugin is there, else Debian's `docker-compose` (v1). */
export async function composeCommand(): Promise<string[]> {
  if ((await run("docker", ["compose", "version"], { timeoutMs: 20_000 })).code === 0)
    return ["docker", "compose"];
  if (which("docker-compose")) return ["docker-compose"];
  throw new Error("neither `docker compose` nor `docker-compose` is installed");
}

export interface ContainerState {
  service: string;
  id: string;
  status: string; // running, exited, ...
  exitCode: number;
  health?: string; // starting, healthy, unhealthy
}

export class ComposeProject {
  constructor(
    readonly command: string[],
    readonly project: string,
    readonly env: NodeJS.ProcessEnv,
    readonly file = path.join(ROOT, "docker-compose.yml"),
  ) {}

  compose(args: string[], timeoutMs: number): Promise<RunResult> {
    const [bin, ...pre] = this.command;
    return run(bin!, [...pre, "-p", this.project, "-f", this.file, ...args], { timeoutMs, env: this.env });
  }

  /** A compose command that must succeed; the error carries its output's tail. */
  async must(args: string[], timeoutMs: number): Promise<string> {
    const result = await this.compose(args, timeoutMs);
    if (result.code !== 0) {
      throw new Error(
        `${this.command.join(" ")} ${args.join(" ")} failed (exit ${result.code}):\n` +
          tail(`${result.stdout}\n${result.stderr}`, 40),
      );
    }
    return result.stdout;
  }

  /** Containers of the project (all states), by the labels Compose v1 and v2 both set. */
  async containers(): Promise<ContainerState[]> {
    const ids = await run(
      "docker",
      ["ps", "-aq", "--filter", `label=com.docker.compose.project=${this.project}`],
      { timeoutMs: 30_000 },
    );
    const list = ids.stdout.split("\n").filter(Boolean);
    if (list.length === 0) return [];
    // JSON, not a -f template: clients differ on a missing .State.Health (an error in Docker 28's).
    const inspected = await run("docker", ["inspect", ...list], { timeoutMs: 30_000 });
    const parsed = JSON.parse(inspected.stdout || "[]") as {
      Id: string;
      Config: { Labels?: Record<string, string> };
      State: { Status: string; ExitCode: number; Health?: { Status: string } };
    }[];
    return parsed.map((c) => ({
      service: c.Config.Labels?.["com.docker.compose.service"] ?? "",
      id: c.Id,
      status: c.State.Status,
      exitCode: c.State.ExitCode,
      health: c.State.Health?.Status,
    }));
  }

  async logsTail(service: string, lines = 40): Promise<string> {
    const container = (await this.containers()).find((c) => c.service === service);
    if (!container) return `(no container for ${service})`;
    const logs = await run("docker", ["logs", "--tail", String(lines), container.id], { timeoutMs: 30_000 });
    return tail(`${logs.stdout}\n${logs.stderr}`, lines);
  }

  /**
   * Waits until every long-running service is healthy and every one-shot service exited 0. Fails fast on
   * an unhealthy service or a failed one-shot, and at the deadline; the error names the service and
   * shows its `docker logs` tail.
   */
  async waitHealthy(
    services: { longRunning: string[]; oneShot: string[] },
    timeoutMs: number,
  ): Promise<number> {
    const started = Date.now();
    const deadline = started + timeoutMs;
    for (;;) {
      const states = await this.containers();
      const byService = new Map(states.map((s) => [s.service, s]));
      const pending: string[] = [];
      for (const name of services.oneShot) {
        const s = byService.get(name);
        if (s?.status === "exited" && s.exitCode !== 0)
          throw new Error(`${name} exited with ${s.exitCode}; docker logs:\n${await this.logsTail(name)}`);
        if (s?.status !== "exited") pending.push(`${name} (${s?.status ?? "no container"})`);
      }
      for (const name of services.longRunning) {
        const s = byService.get(name);
        if (s?.health === "unhealthy")
          throw new Error(`${name} is unhealthy; docker logs:\n${await this.logsTail(name)}`);
        if (s && s.status !== "running" && s.status !== "restarting" && s.status !== "created")
          throw new Error(
            `${name} is ${s.status} (exit ${s.exitCode}); docker logs:\n${await this.logsTail(name)}`,
          );
        if (s?.health !== "healthy") pending.push(`${name} (${s ? (s.health ?? s.status) : "no container"})`);
      }
      if (pending.length === 0) return Date.now() - started;
      if (Date.now() > deadline) {
        const first = pending[0]!.split(" ")[0]!;
        throw new Error(
          `not healthy after ${timeoutMs / 1000} s: ${pending.join(", ")}; docker logs of ${first}:\n` +
            (await this.logsTail(first)),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }

  /** What of the project is left: containers, networks, volumes (by the Compose project label). */
  async leftovers(): Promise<string[]> {
    const label = `label=com.docker.compose.project=${this.project}`;
    const found: string[] = [];
    for (const [kind, args] of [
      ["container", ["ps", "-aq", "--filter", label]],
      ["network", ["network", "ls", "-q", "--filter", label]],
      ["volume", ["volume", "ls", "-q", "--filter", label]],
    ] as const) {
      const result = await run("docker", [...args], { timeoutMs: 30_000 });
      for (const id of result.stdout.split("\n").filter(Boolean)) found.push(`${kind} ${id}`);
    }
    return found;
  }
}

/** True when nothing on 127.0.0.1 accepts connections on `port` (so Compose can publish it). */
export async function portFree(port: number): Promise<boolean> {
  const net = await import("node:net");
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.setTimeout(2_000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(true));
  });
}

export const composeFileExists = (): boolean => existsSync(path.join(ROOT, "docker-compose.yml"));
