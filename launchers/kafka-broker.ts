/**
 * One local broker's process lifecycle: the start (ready when it answers `describeCluster` with its own
 * cluster id), a hard kill of its JVM and a restart on the same ports and data (a datacenter outage for
 * tests), and the final stop. The storage format and the data dir belong to ./kafka.ts.
 *
 * The broker runs under guard.sh (./process.ts): the guard's child is the JVM itself, leader of its own
 * session. A kill SIGKILLs that session, not the guard: the guard then sees its child die and exits on
 * its own, whereas a SIGKILLed guard would leave the JVM running until this Node process exits, and a
 * `ManagedProcess.stop()` would SIGTERM it (a clean shutdown: logs flushed, controlled leadership move).
 */
import { readFileSync, statSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import type { ResolvedKafkaSecurity } from "../kafka/security.js";
import { describeCluster, tcpOpen } from "./kafka-external.js";
import { cdsOptions, KafkaLaunchError } from "./kafka-setup.js";
import type { LauncherLogger } from "./kafka-types.js";
import { pidAlive, startManaged, waitUntil, type ManagedProcess } from "./process.js";

/** Everything a start needs, kept so that a restart runs exactly the same broker. */
export interface BrokerLaunch {
  /** Cluster name (`kafka-<name>` is the managed process's name). */
  name: string;
  java: string;
  /** JVM options, main class and properties file; the class data sharing options are chosen per start. */
  args: string[];
  /** Class data sharing archive of this JVM and jar set, when sharing is on. */
  cdsArchive?: string;
  /** The broker's log4j log and the JVM's own stdout/stderr. */
  logFile: string;
  stdoutFile: string;
  dataDir: string;
  brokerPort: number;
  controllerPort: number;
  clusterId: string;
  /** How the start probe connects to a secured cluster. */
  security?: ResolvedKafkaSecurity;
  startTimeoutMs: number;
  graceSeconds: number;
}

/** A started broker: its guard, and what runs once it exited (publishes a class data sharing archive). */
export interface BrokerProcess {
  process: ManagedProcess;
  afterExit?: (publish: boolean) => Promise<void>;
}

/**
 * The warnings and errors of a log4j log, each with the exception lines of its stack trace (`Caused by:
 * java.net.BindException: Address already in use`), without the `at ...` frames.
 */
function problemLines(lines: string[]): string[] {
  const problems: string[] = [];
  let inProblem = false;
  for (const line of lines) {
    if (/^\[[^\]]+\] /.test(line)) inProblem = /^\[[^\]]+\] (WARN|ERROR|FATAL) /.test(line);
    else if (!inProblem || /^\s/.test(line) || line === "") continue;
    if (inProblem) problems.push(line);
  }
  return problems;
}

/** The broker log's warnings and errors, then its last lines: what explains a failed start. */
export async function logExcerpt(file: string, fromByte = 0): Promise<string> {
  let lines: string[];
  try {
    // The log appends across restarts: only what this start wrote explains its failure.
    lines = (await readFile(file)).subarray(fromByte).toString("utf8").split("\n");
  } catch {
    return `--- ${file}: (no log file) ---`;
  }
  const problems = problemLines(lines).slice(-20);
  return [
    ...(problems.length > 0 ? [`--- ${file}: warnings and errors ---`, ...problems] : []),
    `--- ${file}: last lines ---`,
    ...lines.slice(-25),
  ].join("\n");
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * Starts the broker JVM under a guard and resolves once it answers `describeCluster` with its cluster
 * id. On failure (timeout or early exit) it stops the process and throws a {@link KafkaLaunchError}
 * holding the log excerpt of this start and the process's last output.
 */
export async function launchBroker(launch: BrokerLaunch): Promise<BrokerProcess> {
  const logStart = fileSize(launch.logFile);
  const cds = launch.cdsArchive ? await cdsOptions(launch.cdsArchive) : { options: [] };
  const managed = startManaged({
    name: `kafka-${launch.name}`,
    command: launch.java,
    args: [...cds.options, ...launch.args],
    logFile: launch.stdoutFile,
    graceSeconds: launch.graceSeconds,
  });
  const brokers = [`127.0.0.1:${launch.brokerPort}`];
  try {
    await waitUntil(
      async () => {
        if (!(await tcpOpen("127.0.0.1", launch.brokerPort))) return false;
        const description = await describeCluster(brokers, 3000, launch.security);
        return description.clusterId === launch.clusterId && description.brokerCount > 0;
      },
      {
        what: `Kafka cluster ${launch.name} (${brokers[0]}, data ${launch.dataDir})`,
        timeoutMs: launch.startTimeoutMs,
        intervalMs: 250,
        process: managed,
      },
    );
  } catch (error) {
    await managed.stop();
    await cds.afterExit?.(false);
    const serverLog = await logExcerpt(launch.logFile, logStart);
    throw new KafkaLaunchError(`${(error as Error).message}\n${serverLog}`, { cause: error });
  }
  return { process: managed, ...(cds.afterExit ? { afterExit: cds.afterExit } : {}) };
}

/**
 * The JVM a guard runs: the guard's child that leads its own session (`setsid` in guard.sh execs the
 * command, so the session id is the JVM's pid). Linux /proc; undefined when there is none.
 */
export async function guardedChild(guardPid: number): Promise<number | undefined> {
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // /proc/<pid>/stat: pid (comm) state ppid pgrp session ...; comm may contain spaces.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const [, ppid, , session] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(ppid) === guardPid && Number(session) === Number(entry)) return Number(entry);
    } catch {
      // the process ended while we looked
    }
  }
  return undefined;
}

/** SIGKILLs a process group (the JVM's session), or the process alone when it leads none. */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

export interface BrokerHandle {
  /** Pid of the guard of the latest start (dead while the broker is killed). */
  pid(): number;
  /** SIGKILLs the JVM; resolves once it is gone and neither of its ports accepts connections. */
  kill(): Promise<void>;
  /** Starts the killed (or crashed) broker again, same ports and data; rejects while it runs. */
  restart(): Promise<void>;
  /** Stops the broker for good (SIGTERM, then SIGKILL after the grace period), if it runs. */
  stop(): Promise<void>;
}

/**
 * The lifecycle of a started broker. Operations on one broker run one after the other (a `stop()`
 * during a restart waits for the restart, then stops the restarted broker); `onStart` hears the
 * guard pid of every restart, `logger` gets a line per kill and restart with its duration.
 */
export function brokerHandle(
  launch: BrokerLaunch,
  first: BrokerProcess,
  hooks: { onStart?: (pid: number) => void; logger?: LauncherLogger } = {},
): BrokerHandle {
  const label = `kafka-${launch.name}`;
  let current: BrokerProcess | undefined = first;
  let lastPid = first.process.pid;
  let stopped = false;
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(operation: () => Promise<T>): Promise<T> => {
    const result = queue.then(operation);
    queue = result.catch(() => undefined);
    return result;
  };
  const refuseWhenStopped = (what: string): void => {
    if (stopped) throw new KafkaLaunchError(`${label}: cannot ${what}, the cluster set was stopped`);
  };

  const kill = async (): Promise<void> => {
    refuseWhenStopped("kill");
    const running = current;
    if (!running?.process.running()) {
      throw new KafkaLaunchError(`${label}: cannot kill, the broker is not running (killed or exited)`);
    }
    const jvm = await guardedChild(running.process.pid);
    if (jvm === undefined) {
      throw new KafkaLaunchError(`${label}: no broker JVM under guard ${running.process.pid} (Linux /proc)`);
    }
    const begun = Date.now();
    killGroup(jvm);
    // The guard reaps the JVM and exits by itself (its `wait` returns): no SIGTERM reaches anything.
    await waitUntil(async () => !running.process.running() && !pidAlive(jvm), {
      what: `${label}: the killed JVM ${jvm} to be gone`,
      timeoutMs: 15_000,
      intervalMs: 50,
    });
    current = undefined;
    // A killed JVM writes no class data sharing archive: release the lock for the next start.
    await running.afterExit?.(false);
    await waitUntil(
      async () =>
        !(await tcpOpen("127.0.0.1", launch.brokerPort, 500)) &&
        !(await tcpOpen("127.0.0.1", launch.controllerPort, 500)),
      { what: `${label}: ports ${launch.brokerPort}/${launch.controllerPort} to close`, timeoutMs: 15_000 },
    );
    hooks.logger?.info({ cluster: launch.name, jvm, ms: Date.now() - begun }, "kafka cluster killed");
  };

  const restart = async (): Promise<void> => {
    refuseWhenStopped("restart");
    if (current?.process.running()) {
      throw new KafkaLaunchError(`${label}: cannot restart, the broker is running (kill it first)`);
    }
    // A broker that exited on its own still holds its class data sharing lock.
    await current?.afterExit?.(false);
    current = undefined;
    const begun = Date.now();
    const started = await launchBroker(launch);
    current = started;
    lastPid = started.process.pid;
    hooks.onStart?.(lastPid);
    hooks.logger?.info({ cluster: launch.name, ms: Date.now() - begun }, "kafka cluster restarted");
  };

  const stop = async (): Promise<void> => {
    stopped = true;
    const running = current;
    current = undefined;
    if (!running) return;
    await running.process.stop();
    await running.afterExit?.(true);
  };

  return {
    pid: () => lastPid,
    kill: () => serial(kill),
    restart: () => serial(restart),
    stop: () => serial(stop),
  };
}
