import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer, Socket } from "node:net";
import { dirname, join } from "node:path";
import { Kafka, logLevel, Partitioners, type Consumer } from "kafkajs";
import {
  connectKafkaClusters,
  describeCluster,
  KafkaLaunchError,
  kafkaLibDir,
  parseKafkaBrokers,
  startKafkaClusters,
  sweepStaleDataDirs,
  type KafkaCluster,
  type KafkaSet,
} from "../../launchers/kafka.js";
import { kafkaSecuritySchema, resolveKafkaSecurity } from "../../kafka/security.js";
import { freePorts } from "../../launchers/ports.js";
import { pidAlive } from "../../launchers/process.js";
import { randomTopic } from "../fixtures/infra.js";
import { eventually, launchCli, processesMatching } from "../support/procs.js";
import { securedClient, securityConfig } from "../support/secured.js";

/** Pids whose parent is `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        // Field 4 of /proc/<pid>/stat is the parent pid; field 2 (comm) may contain spaces.
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

const CONFIG_RESOURCE_TOPIC = 2; // kafkajs ConfigResourceTypes.TOPIC

function client(cluster: KafkaCluster): Kafka {
  return new Kafka({
    clientId: `kafka-launcher-test-${cluster.name}`,
    brokers: cluster.brokers,
    logLevel: logLevel.NOTHING,
  });
}

/** Runs `consumer` until `done(values)` holds; returns the values in arrival order. */
async function consumeUntil(
  consumer: Consumer,
  topic: string,
  done: (values: string[]) => boolean,
  timeoutMs = 30_000,
): Promise<string[]> {
  const values: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumed only ${JSON.stringify(values)}`)), timeoutMs);
      consumer
        .run({
          eachMessage: async ({ message }) => {
            values.push(message.value?.toString() ?? "");
            if (done(values)) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return values;
}

describe("Kafka launcher", function () {
  this.timeout(120_000);
  let set: KafkaSet | undefined;

  before(async function () {
    set = await startKafkaClusters({ names: ["dc1", "dc2"] });
  });

  after(async function () {
    await set?.stop();
  });

  it("starts one independent single-node cluster per datacenter on its own ports", async function () {
    const clusters = set!.clusters;
    expect(clusters.map((c) => c.name)).to.deep.equal(["dc1", "dc2"]);
    const brokers = clusters.flatMap((c) => c.brokers);
    expect(brokers).to.have.length(2);
    for (const broker of brokers) expect(broker).to.match(/^127\.0\.0\.1:\d+$/);
    expect(new Set(brokers).size).to.equal(2);
    for (const cluster of clusters) {
      expect(existsSync(join(cluster.dataDir!, "logs", "server.log"))).to.equal(true);
      const description = await describeCluster(cluster.brokers);
      expect(description.clusterId).to.equal(cluster.clusterId);
      expect(description.brokerCount).to.equal(1);
    }
    expect(clusters[0]!.clusterId).to.not.equal(clusters[1]!.clusterId);
    expect(set!.pids).to.have.length(2);
  });

  it("produces and consumes with a consumer group on every cluster, topics stay separate", async function () {
    await Promise.all(
      set!.clusters.map(async (cluster) => {
        const kafka = client(cluster);
        const topic = randomTopic("launcher");
        const groupId = `${topic}-group`;
        const admin = kafka.admin();
        await admin.connect();
        try {
          expect(
            await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true }),
          ).to.equal(true);
          const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
          await producer.connect();
          const sent = ["a", "b", "c", "d"].map((v) => `${cluster.name}-${v}`);
          await producer.send({ topic, messages: sent.map((value, i) => ({ key: `k${i}`, value })) });
          await producer.disconnect();

          const consumer = kafka.consumer({ groupId });
          // A consumer group delivers at least once: a rebalance on a loaded machine may hand a record
          // over twice, so wait for every distinct record and allow repeats of them only.
          const received = await consumeUntil(
            consumer,
            topic,
            (values) => new Set(values).size >= sent.length,
          );
          expect([...new Set(received)].sort()).to.deep.equal(sent);

          // The group committed what it consumed (kafkajs commits on disconnect).
          const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
          const committed = offsets!.partitions.reduce((sum, p) => sum + Number(p.offset), 0);
          expect(committed).to.equal(sent.length);
          // The other datacenter does not have the topic: clusters are independent.
          const other = set!.clusters.find((c) => c.name !== cluster.name)!;
          const otherAdmin = client(other).admin();
          await otherAdmin.connect();
          expect(await otherAdmin.listTopics()).to.not.include(topic);
          await otherAdmin.disconnect();
        } finally {
          await admin.disconnect();
        }
      }),
    );
  });

  it("supports transactions: sendOffsets, and read_committed consumers skip aborted messages", async function () {
    await Promise.all(
      set!.clusters.map(async (cluster) => {
        const kafka = client(cluster);
        const topic = randomTopic("launcher-tx");
        const admin = kafka.admin();
        await admin.connect();
        try {
          await admin.createTopics({ topics: [{ topic }], waitForLeaders: true });
          const producer = kafka.producer({
            createPartitioner: Partitioners.DefaultPartitioner,
            transactionalId: `${topic}-tx`,
            idempotent: true,
            maxInFlightRequests: 1,
          });
          await producer.connect();
          const first = await producer.transaction();
          await first.send({ topic, messages: [{ value: "committed-1" }] });
          await first.sendOffsets({
            consumerGroupId: `${topic}-upstream`,
            topics: [{ topic, partitions: [{ partition: 0, offset: "7" }] }],
          });
          await first.commit();
          const aborted = await producer.transaction();
          await aborted.send({ topic, messages: [{ value: "aborted" }] });
          await aborted.abort();
          const last = await producer.transaction();
          await last.send({ topic, messages: [{ value: "committed-2" }] });
          await last.commit();
          await producer.disconnect();

          // The aborted message sits between the two committed ones: a consumer that reached
          // committed-2 has passed it.
          const consumer = kafka.consumer({ groupId: `${topic}-reader`, readUncommitted: false });
          const received = await consumeUntil(consumer, topic, (values) => values.includes("committed-2"));
          expect(received).to.deep.equal(["committed-1", "committed-2"]);

          const [offsets] = await admin.fetchOffsets({ groupId: `${topic}-upstream`, topics: [topic] });
          expect(offsets!.partitions).to.deep.include({ partition: 0, offset: "7", metadata: null });
        } finally {
          await admin.disconnect();
        }
      }),
    );
  });

  it("serves the admin calls the replicator uses and never auto-creates topics", async function () {
    const kafka = client(set!.clusters[0]!);
    const admin = kafka.admin();
    await admin.connect();
    try {
      const topic = randomTopic("launcher-admin");
      await admin.createTopics({
        topics: [{ topic, numPartitions: 1, configEntries: [{ name: "retention.ms", value: "3600000" }] }],
        waitForLeaders: true,
      });
      await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(metadata.topics[0]!.partitions).to.have.length(3);
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: CONFIG_RESOURCE_TOPIC, name: topic, configNames: ["retention.ms"] }],
      });
      expect(configs.resources[0]!.configEntries.map((e) => [e.configName, e.configValue])).to.deep.equal([
        ["retention.ms", "3600000"],
      ]);
      expect(await admin.listTopics()).to.include(topic);
      await admin.deleteTopics({ topics: [topic] });
      let deleted = false;
      for (let i = 0; i < 50 && !deleted; i++) {
        deleted = !(await admin.listTopics()).includes(topic);
        if (!deleted) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(deleted).to.equal(true);

      // auto.create.topics.enable=false: producing to an unknown topic fails instead of creating it.
      const missing = randomTopic("launcher-missing");
      const producer = kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 200 },
      });
      await producer.connect();
      let error: unknown;
      try {
        await producer.send({ topic: missing, messages: [{ value: "x" }] });
      } catch (caught) {
        error = caught;
      } finally {
        await producer.disconnect();
      }
      expect(error).to.be.instanceOf(Error);
      expect(await admin.listTopics()).to.not.include(missing);
    } finally {
      await admin.disconnect();
    }
  });

  it("external mode checks that the given brokers answer and owns nothing", async function () {
    const spec = set!.clusters.map((c) => `${c.name}=${c.brokers.join(",")}`).join(";");
    const external = await connectKafkaClusters({ brokers: spec, timeoutMs: 10_000 });
    expect(external.clusters).to.deep.equal(set!.clusters.map((c) => ({ name: c.name, brokers: c.brokers })));
    expect(external.pids).to.deep.equal([]);
    await external.stop();
    expect(await describeCluster(set!.clusters[0]!.brokers)).to.have.property("brokerCount", 1);

    const [closedPort] = await freePorts(1);
    let error: unknown;
    try {
      await connectKafkaClusters({ brokers: `dcx=127.0.0.1:${closedPort}`, timeoutMs: 1500 });
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(KafkaLaunchError);
    expect((error as Error).message)
      .to.contain("dcx")
      .and.contain(`127.0.0.1:${closedPort}`);
  });

  it("stop() ends the brokers and deletes their data dirs", async function () {
    const { clusters, pids } = set!;
    for (const cluster of clusters) expect(processesMatching(cluster.dataDir!).length).to.be.greaterThan(0);
    await set!.stop();
    expect(pids.filter(pidAlive)).to.deep.equal([]);
    for (const cluster of clusters) {
      expect(processesMatching(cluster.dataDir!)).to.deep.equal([]);
      expect(existsSync(cluster.dataDir!)).to.equal(false);
    }
  });
});

/** The error code of a TCP connection to 127.0.0.1:port (`ECONNREFUSED`), or "connected". */
function connectResult(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.setTimeout(2000, () => (socket.destroy(), resolve("timeout")));
    socket.once("connect", () => (socket.destroy(), resolve("connected")));
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    socket.connect(port, "127.0.0.1");
  });
}

/** The rejection of `promise` (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}

// A datacenter outage: the broker JVM SIGKILLed (no clean shutdown), then started again on the same
// ports and data. Each security mode starts its own single cluster.
for (const security of ["plaintext", "sasl_ssl"] as const) {
  describe(`Kafka launcher outage (${security}): kill and restart`, function () {
    this.timeout(120_000);
    const name = `outage-${randomBytes(3).toString("hex")}`;
    const timings: Record<string, number> = {};
    let set: KafkaSet | undefined;
    let cluster: KafkaCluster;
    const kafka = (): Kafka => securedClient(cluster, cluster.security ? securityConfig(cluster) : null);
    const port = (): number => Number(cluster.brokers[0]!.split(":")[1]);

    before(async function () {
      set = await startKafkaClusters({
        names: [name],
        security,
        // A restart waits for the killed incarnation's broker session to expire (9 s by default).
        brokerProperties: { "broker.session.timeout.ms": 3000, "broker.heartbeat.interval.ms": 500 },
        logger: { info: (obj, msg) => msg && "ms" in obj && (timings[msg] = obj.ms as number) },
      });
      cluster = set.clusters[0]!;
    });

    after(async function () {
      await set?.stop();
    });

    it("kill SIGKILLs the broker; restart brings it back on its port with its records", async function () {
      const topic = randomTopic("outage");
      const admin = kafka().admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic }], waitForLeaders: true });
      await admin.disconnect();
      const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: ["a", "b", "c"].map((value) => ({ value })) });
      await producer.disconnect();

      const guard = cluster.pid!;
      const [jvm] = childrenOf(guard).filter(
        (pid) => readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "java",
      );
      expect(jvm).to.be.a("number");
      const cleanShutdownMark = join(cluster.dataDir!, "kraft", ".kafka_cleanshutdown");
      const logBefore = readFileSync(cluster.logFile!, "utf8").length;

      await set!.kill(name);
      // Gone at once, guard included; a SIGKILL leaves no clean-shutdown mark and logs no shutdown.
      expect([guard, jvm!].filter(pidAlive)).to.deep.equal([]);
      expect(existsSync(cleanShutdownMark)).to.equal(false);
      expect(readFileSync(cluster.logFile!, "utf8").slice(logBefore)).to.not.match(/shutting down/i);
      expect(await connectResult(port())).to.equal("ECONNREFUSED");
      expect(processesMatching(cluster.dataDir!)).to.deep.equal([]);

      await set!.restart(name);
      expect(cluster.pid).to.not.equal(guard);
      expect(pidAlive(cluster.pid!)).to.equal(true);
      expect(set!.pids).to.deep.equal([cluster.pid]);
      expect(cluster.brokers).to.deep.equal([`127.0.0.1:${port()}`]);
      const description = await describeCluster(
        cluster.brokers,
        3000,
        cluster.security
          ? resolveKafkaSecurity(kafkaSecuritySchema.parse(securityConfig(cluster)), "test")
          : undefined,
      );
      expect(description.clusterId).to.equal(cluster.clusterId);

      // The data survived (no re-format): the topic and its three records, then one more.
      const after = kafka().admin();
      await after.connect();
      expect(await after.fetchTopicOffsets(topic)).to.deep.include({
        partition: 0,
        offset: "3",
        high: "3",
        low: "0",
      });
      await after.disconnect();
      const again = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await again.connect();
      await again.send({ topic, acks: -1, messages: [{ value: "d" }] });
      await again.disconnect();
      const consumer = kafka().consumer({ groupId: `${topic}-after-restart` });
      const received = await consumeUntil(consumer, topic, (values) => values.length >= 4);
      expect(received).to.deep.equal(["a", "b", "c", "d"]);
      process.stdout.write(
        `      kill ${timings["kafka cluster killed"]} ms, restart ${timings["kafka cluster restarted"]} ms\n`,
      );
    });

    it("rejects restart while the broker runs, kill while it is down, and unknown names", async function () {
      const pid = cluster.pid;
      expect((await rejection(set!.restart(name))).message).to.match(/is running \(kill it first\)/);
      expect(cluster.pid).to.equal(pid);
      expect(await connectResult(port())).to.equal("connected");
      expect((await rejection(set!.kill("nope"))).message).to.contain('no Kafka cluster "nope"');
      expect((await rejection(set!.restart("nope"))).message).to.contain(name);

      await set!.kill(name);
      expect((await rejection(set!.kill(name))).message).to.match(/not running/);
      await set!.restart(name);
      expect(await connectResult(port())).to.equal("connected");
    });

    if (security === "plaintext") {
      it("a restart that cannot bind its port fails with the broker's log, and can be tried again", async function () {
        await set!.kill(name);
        // Holds the port and hangs up on every connection (the start probe's included).
        const squatter = createServer((socket) => socket.destroy());
        await new Promise<void>((resolve) => squatter.listen(port(), "127.0.0.1", resolve));
        let error: Error;
        try {
          error = await rejection(set!.restart(name));
        } finally {
          await new Promise((resolve) => squatter.close(resolve));
        }
        expect(error).to.be.instanceOf(KafkaLaunchError);
        expect(error.message)
          .to.contain(`kafka-${name}`)
          .and.contain(cluster.logFile!)
          .and.match(/Address already in use|BindException/);
        expect(processesMatching(cluster.dataDir!)).to.deep.equal([]);
        await set!.restart(name);
        expect(await connectResult(port())).to.equal("connected");
      });

      it("external mode cannot kill or restart the brokers it connects to", async function () {
        const external = await connectKafkaClusters({ brokers: { [name]: cluster.brokers } });
        for (const attempt of [external.kill(name), external.restart(name)]) {
          const error = await rejection(attempt);
          expect(error).to.be.instanceOf(KafkaLaunchError);
          expect(error.message).to.match(/external mode: cannot (kill|restart)/);
        }
        expect(await connectResult(port())).to.equal("connected");
      });
    }

    it("stop() ends the restarted broker and deletes its data dir; kill and restart then reject", async function () {
      const pid = cluster.pid!;
      await set!.stop();
      expect(pidAlive(pid)).to.equal(false);
      expect(processesMatching(cluster.dataDir!)).to.deep.equal([]);
      expect(existsSync(cluster.dataDir!)).to.equal(false);
      expect((await rejection(set!.restart(name))).message).to.match(/stopped/);
      expect((await rejection(set!.kill(name))).message).to.match(/stopped/);
    });
  });
}

describe("Kafka launcher failures", function () {
  this.timeout(120_000);

  it("reports a broker that cannot start with its log, and leaves nothing behind", async function () {
    const baseDir = mkdtempSync(join(tmpdir(), "lp-kafka-fail-"));
    try {
      let error: unknown;
      try {
        await startKafkaClusters({
          names: ["broken"],
          baseDir,
          brokerProperties: { "log.segment.bytes": "lots" },
        });
      } catch (caught) {
        error = caught;
      }
      expect(error).to.be.instanceOf(KafkaLaunchError);
      expect((error as Error).message)
        .to.contain("kafka-broken")
        .and.contain("log.segment.bytes");
      expect(readdirSync(baseDir)).to.deep.equal([]);
      expect(processesMatching(baseDir)).to.deep.equal([]);
    } finally {
      rmSync(baseDir, { recursive: true, force: true });
    }
  });

  it("leaves no broker behind when the launching process is killed with SIGKILL", async function () {
    const { child, ready } = await launchCli(["kafka", "--datacenters", "1"]);
    const pids = ready.pids as number[];
    const [datacenter] = ready.datacenters as { name: string; brokers: string[] }[];
    expect(datacenter!.name).to.equal("dc1");
    // The broker JVM runs under the guard (pids are the guards').
    const jvms = pids
      .flatMap(childrenOf)
      .filter((pid) => readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "java");
    expect(jvms).to.have.length(1);
    const logsDir = /-Dkafka\.logs\.dir=(\S+)\/logs\0/.exec(readFileSync(`/proc/${jvms[0]}/cmdline`, "utf8"));
    const dataDir = logsDir![1]!;
    child.kill("SIGKILL");
    expect(await eventually(() => ![...pids, ...jvms].some(pidAlive), 30_000)).to.equal(true);
    // The killed launcher could not delete its data dir; the next launch sweeps it.
    expect(existsSync(dataDir)).to.equal(true);
    expect(await sweepStaleDataDirs(dirname(dataDir))).to.include(dataDir);
    expect(existsSync(dataDir)).to.equal(false);
    expect(
      await describeCluster(datacenter!.brokers, 1000).then(
        () => "up",
        () => "down",
      ),
    ).to.equal("down");
  });

  it("tells the user to run the setup when the jars are missing", function () {
    const empty = mkdtempSync(join(tmpdir(), "lp-kafka-cache-"));
    try {
      expect(() => kafkaLibDir({ LP_CACHE_DIR: empty })).to.throw(KafkaLaunchError, /lp_ensure_kafka/);
      expect(() => kafkaLibDir({ LP_KAFKA_LIB: join(empty, "nope") })).to.throw(
        KafkaLaunchError,
        /LP_KAFKA_LIB/,
      );
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe("parseKafkaBrokers", function () {
  it("maps datacenters to their bootstrap servers", function () {
    const parsed = parseKafkaBrokers(" dc1=host-a:9092,host-b:9094 ; dc2=[::1]:9093;");
    expect([...parsed]).to.deep.equal([
      ["dc1", ["host-a:9092", "host-b:9094"]],
      ["dc2", ["[::1]:9093"]],
    ]);
  });

  for (const [spec, expected] of [
    ["", /empty/],
    ["dc1", /not name=host:port/],
    ["=h:1", /not name=host:port/],
    ["dc1=", /no brokers/],
    ["dc1=host", /"host" of "dc1" is not host:port/],
    ["dc1=host:0", /not host:port/],
    ["dc1=host:70000", /not host:port/],
    ["dc1=a:1;dc1=b:2", /given twice/],
  ] as const) {
    it(`rejects ${JSON.stringify(spec)}`, function () {
      expect(() => parseKafkaBrokers(spec)).to.throw(KafkaLaunchError, expected);
    });
  }

  it("names the variable it parses", function () {
    expect(() => parseKafkaBrokers("x", "MY_VAR")).to.throw(/MY_VAR/);
  });
});
