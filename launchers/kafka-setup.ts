/**
 * What a local Kafka broker needs before it starts: the version and jars (resolved by
 * scripts/lib/kafka.sh from launchers/kafka/pom.xml), a `java`, JVM options and the class data sharing
 * archive that makes later brokers start about a third faster.
 */
import { createHash, randomBytes } from "node:crypto";
import { accessSync, constants, existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { LaunchError } from "./errors.js";

const POM = fileURLToPath(new URL("./kafka/pom.xml", import.meta.url));
const SETUP_HINT =
  "run the setup first: `bash -c '. scripts/lib/env.sh && . scripts/lib/kafka.sh && lp_ensure_kafka'` " +
  "(needs Java 17+ and Maven), or set LP_KAFKA_LIB to a directory holding the Kafka jars";

/** A startup failure, with the broker's log tail in the message. */
export class KafkaLaunchError extends LaunchError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("KAFKA_LAUNCH_FAILED", message, options);
  }
}

/** The Kafka version the project uses: `<kafka.version>` of launchers/kafka/pom.xml. */
export function kafkaVersion(): string {
  const match = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(readFileSync(POM, "utf8"));
  if (!match?.[1]) throw new KafkaLaunchError(`no <kafka.version> in ${POM}`);
  return match[1].trim();
}

/** `$LP_CACHE_DIR`, default `${XDG_CACHE_HOME:-~/.cache}/license-platform` (as scripts/lib/env.sh). */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LP_CACHE_DIR) return env.LP_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "license-platform");
}

/**
 * The directory holding the Kafka jars: `LP_KAFKA_LIB` when set, else the cache path that
 * `lp_ensure_kafka` fills. Throws with the setup command when it is missing or incomplete.
 */
export function kafkaLibDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LP_KAFKA_LIB) {
    if (!existsSync(env.LP_KAFKA_LIB)) {
      throw new KafkaLaunchError(`LP_KAFKA_LIB=${env.LP_KAFKA_LIB} does not exist: ${SETUP_HINT}`);
    }
    return env.LP_KAFKA_LIB;
  }
  const dir = join(cacheDir(env), "kafka", kafkaVersion());
  const stamp = join(dir, ".complete");
  const pomHash = createHash("sha256").update(readFileSync(POM)).digest("hex");
  if (!existsSync(stamp)) {
    throw new KafkaLaunchError(`Kafka ${kafkaVersion()} jars not found in ${dir}/lib: ${SETUP_HINT}`);
  }
  if (readFileSync(stamp, "utf8").trim() !== pomHash) {
    throw new KafkaLaunchError(
      `Kafka jars in ${dir}/lib are stale (launchers/kafka/pom.xml changed): ${SETUP_HINT}`,
    );
  }
  return join(dir, "lib");
}

/** The `java` to run: `$JAVA_HOME/bin/java`, else the first on PATH. */
export function findJava(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [
    ...(env.JAVA_HOME ? [join(env.JAVA_HOME, "bin", "java")] : []),
    ...(env.PATH ?? "").split(delimiter).map((dir) => join(dir, "java")),
  ];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new KafkaLaunchError("no `java` found (JAVA_HOME or PATH): Kafka needs Java 17 or newer");
}

/** Default JVM options: small heap, serial GC, fast start (C1 only), no perf data file. */
export function jvmOptions(heap: string): string[] {
  return [
    `-Xmx${heap}`,
    "-Xms64m",
    "-Xss512k",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
  ];
}

/** Where the class data sharing archive of this JVM and jar set lives (outside the repository). */
export function cdsArchivePath(libDir: string, java: string, env: NodeJS.ProcessEnv = process.env): string {
  const key = createHash("sha256")
    .update(`${realpathSync(java)}\0${statSync(realpathSync(java)).mtimeMs}\0`)
    .update(`${realpathSync(libDir)}\0${statSync(libDir).mtimeMs}`)
    .digest("hex")
    .slice(0, 16);
  return join(cacheDir(env), "kafka", "cds", `${key}.jsa`);
}

const CDS_LOCK_STALE_MS = 10 * 60_000;

/**
 * JVM options for class data sharing: use the archive when it exists; otherwise let exactly one
 * broker (lock file) write it at exit, and publish it atomically once that broker has stopped.
 */
export async function cdsOptions(
  archive: string,
): Promise<{ options: string[]; afterExit?: (publish: boolean) => Promise<void> }> {
  const quiet = "-Xlog:cds=off,cds+dynamic=off";
  if (existsSync(archive)) return { options: [`-XX:SharedArchiveFile=${archive}`, quiet] };
  const lock = `${archive}.lock`;
  await mkdir(dirname(archive), { recursive: true });
  try {
    const info = await stat(lock);
    if (Date.now() - info.mtimeMs < CDS_LOCK_STALE_MS) return { options: [] };
    await rm(lock, { force: true });
  } catch {
    // no lock
  }
  try {
    await (await open(lock, "wx")).close();
  } catch {
    return { options: [] };
  }
  // Archives a JVM wrote after its launcher was killed were never published: drop them.
  const cdsDir = dirname(archive);
  for (const file of await readdir(cdsDir)) {
    if (file.startsWith(`${basename(archive)}.`) && file.endsWith(".tmp")) {
      await rm(join(cdsDir, file), { force: true });
    }
  }
  const partial = `${archive}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  return {
    options: [`-XX:ArchiveClassesAtExit=${partial}`, quiet],
    afterExit: async (publish) => {
      try {
        if (publish && (await stat(partial)).size > 0) await rename(partial, archive);
      } catch {
        // the JVM wrote no archive (killed, or CDS unsupported): the next start tries again
      } finally {
        await rm(partial, { force: true });
        await rm(lock, { force: true });
      }
    },
  };
}
