/**
 * Replication between two datacenters whose brokers listen on SASL_SSL only (SCRAM-SHA-512, CA file,
 * password file; the secured pair of test/fixtures/infra.ts): both delivery modes count every record
 * once; a wrong password shows in /healthz (datacenter and cause), is logged a bounded number of times,
 * and once the config file is fixed (hot reload) the records flow and none is lost; a plaintext
 * datacenter config at the TLS listener says what to check.
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Consumer } from "kafkajs";
import { parseConfig } from "../../replicator/config.js";
import { randomTopic } from "../fixtures/infra.js";
import { ROOT } from "../support/procs.js";
import { securedClient, securedCluster, securityConfig } from "../support/secured.js";
import { startReplicator, stopReplicators, waitFor } from "./helpers.js";

const children: ChildProcess[] = [];
const consumers: Consumer[] = [];

async function createTopic(dc: string, topic: string, partitions: number): Promise<void> {
  const admin = securedClient(await securedCluster(dc)).admin();
  await admin.connect();
  try {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions }] });
  } finally {
    await admin.disconnect();
  }
}

async function produce(dc: string, topic: string, from: number, count: number, partitions: number) {
  const producer = securedClient(await securedCluster(dc)).producer();
  await producer.connect();
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: Array.from({ length: count }, (_, j) => ({
        partition: (from + j) % partitions,
        key: `k${from + j}`,
        value: `v${from + j}`,
      })),
    });
  } finally {
    await producer.disconnect();
  }
}

/** Every record of `topic` in `dc` (read_committed, from the beginning), as the keys seen so far. */
async function collectKeys(dc: string, topic: string): Promise<string[]> {
  const cluster = await securedCluster(dc);
  const kafka = securedClient(cluster);
  await waitFor(
    async () => {
      const admin = kafka.admin();
      await admin.connect();
      try {
        return (await admin.listTopics()).includes(topic);
      } finally {
        await admin.disconnect();
      }
    },
    30_000,
    `topic ${topic} in ${dc}`,
  );
  const keys: string[] = [];
  const consumer = kafka.consumer({
    groupId: randomTopic("sec-collector"),
    sessionTimeout: 6000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 100,
  });
  consumers.push(consumer);
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      keys.push(message.key?.toString() ?? "");
    },
  });
  return keys;
}

/** The keys arrived exactly once each, and no late duplicate follows. */
async function expectExactly(keys: string[], total: number, timeoutMs: number): Promise<void> {
  await waitFor(() => keys.length >= total, timeoutMs, `${total} records (have ${keys.length})`);
  await new Promise((r) => setTimeout(r, 1500));
  expect(keys.length).to.equal(total);
  expect(new Set(keys).size).to.equal(total);
}

async function datacenters(overrides: { sec1?: Record<string, unknown> } = {}) {
  const [sec1, sec2] = await Promise.all([securedCluster("sec1"), securedCluster("sec2")]);
  return [
    { name: "sec1", brokers: sec1.brokers, security: securityConfig(sec1), ...overrides.sec1 },
    { name: "sec2", brokers: sec2.brokers, security: securityConfig(sec2) },
  ];
}

/** The replicator CLI as a process; `output()` is what it wrote so far (stdout and stderr). */
function runCli(file: string): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ["--import", "tsx", "replicator/cli.ts", "--config", file], {
    cwd: ROOT,
    env: { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  child.stdout?.on("data", (d: Buffer) => (text += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (text += d.toString()));
  children.push(child);
  return { child, output: () => text };
}

function logLines(stdout: string): { level: number; msg?: string; [k: string]: unknown }[] {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("{") && l.endsWith("}"))
    .map((l) => JSON.parse(l) as { level: number; msg?: string });
}

describe("replicator over SASL_SSL (SCRAM-SHA-512, real secured brokers)", function () {
  this.timeout(180_000);
  let dir: string;

  before(async () => {
    await securedCluster("sec1");
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "lp-replicator-sec-"));
  });
  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await new Promise((r) => child.once("exit", r));
      }
    }
    await Promise.all(consumers.splice(0).map((c) => c.disconnect()));
    await stopReplicators();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const delivery of ["at-least-once", "exactly-once"] as const) {
    it(`${delivery}: sec1 → sec2, every record once`, async () => {
      const topic = randomTopic(`sec-${delivery}`);
      const partitions = 3;
      const total = 600;
      await createTopic("sec1", topic, partitions);
      const config = parseConfig({
        replicator: { id: randomTopic("sec"), delivery, datacenter: "sec2" },
        datacenters: await datacenters(),
        discovery: { intervalMs: 500, include: [topic] },
        replication: [{ model: "full", sources: ["sec1"], destinations: ["sec2"] }],
      });
      await produce("sec1", topic, 0, total / 2, partitions);
      const replicator = await startReplicator(config);
      const keys = await collectKeys("sec2", topic);
      await produce("sec1", topic, total / 2, total / 2, partitions);
      await expectExactly(keys, total, 60_000);
      expect(replicator.health().ok).to.equal(true);
    });
  }

  it("a plaintext datacenter config at the TLS listener: /healthz names it and what to check", async () => {
    const config = parseConfig({
      replicator: { id: randomTopic("sec"), datacenter: "sec2" },
      datacenters: await datacenters({ sec1: { security: undefined } }),
      discovery: { intervalMs: 500, include: ["nothing-.*"] },
      replication: [{ model: "full", sources: ["sec1"], destinations: ["sec2"] }],
    });
    const replicator = await startReplicator(config);
    await waitFor(
      () => replicator.health().datacenters.some((d) => d.name === "sec1" && !d.reachable),
      20_000,
      "sec1 unreachable",
    );
    const sec1 = replicator.health().datacenters.find((d) => d.name === "sec1");
    expect(sec1?.error).to.match(
      /Closed connection.*is its listener TLS \(SSL or SASL_SSL\)\? this client's security.protocol is PLAINTEXT/,
    );
  });

  it("the CLI refuses to start when a password reference does not resolve, naming the field", async () => {
    const file = join(dir, "replicator.yaml");
    const all = await datacenters();
    const sec1 = {
      ...all[0]!,
      security: {
        ...all[0]!.security,
        sasl: { ...all[0]!.security.sasl, password: { env: "LP_TEST_UNSET_PASSWORD" } },
      },
    };
    writeFileSync(
      file,
      JSON.stringify({
        datacenters: [sec1, all[1]],
        replication: [{ model: "full", sources: ["sec1"], destinations: ["sec2"] }],
      }),
    );
    const { child, output } = runCli(file);
    const code = await new Promise((r) => child.once("exit", r));
    expect(code).to.equal(2);
    expect(output()).to.include(
      "datacenters[0].security.sasl.password: environment variable LP_TEST_UNSET_PASSWORD is not set",
    );
  });

  it("wrong password: 503 naming the datacenter and the cause, bounded error logs, no loss after the config file is fixed", async () => {
    const sec1 = await securedCluster("sec1");
    const password = readFileSync(sec1.security.passwordFile, "utf8");
    const wrongFile = join(dir, "sec1-wrong-password");
    writeFileSync(wrongFile, "wrong-password\n");
    const topic = randomTopic("sec-reload");
    const partitions = 2;
    const total = 400;
    await createTopic("sec1", topic, partitions);
    await produce("sec1", topic, 0, total / 2, partitions);
    const file = join(dir, "replicator.yaml");
    const write = async (passwordFile: string) =>
      writeFileSync(
        file,
        JSON.stringify({
          // workers "auto": two engine threads on two cores, each resolving the references itself
          replicator: { id: randomTopic("sec"), datacenter: "sec2" },
          datacenters: await datacenters({ sec1: { security: securityConfig(sec1, { passwordFile }) } }),
          discovery: { intervalMs: 500, include: [topic] },
          replication: [{ model: "full", sources: ["sec1"], destinations: ["sec2"] }],
        }),
      );
    await write(wrongFile);
    const { child, output } = runCli(file);
    await waitFor(() => /"msg":"admin listening"/.test(output()), 30_000, "admin listening");
    const url = /"url":"(http:\/\/[^"]+)","msg":"admin listening"/.exec(output())?.[1];
    let health:
      { status: string; datacenters: { name: string; reachable: boolean; error?: string }[] } | undefined;
    await waitFor(
      async () => {
        const res = await fetch(`${url}/healthz`);
        health = (await res.json()) as typeof health;
        return res.status === 503 && health!.datacenters.some((d) => d.name === "sec1" && !d.reachable);
      },
      30_000,
      "/healthz 503 for sec1",
    );
    const sec1Health = health!.datacenters.find((d) => d.name === "sec1");
    expect(sec1Health?.error).to.match(/SASL SCRAM SHA512 authentication failed/);
    expect(health!.datacenters.find((d) => d.name === "sec2")?.reachable).to.equal(true);
    // a while in the failing state: still running, errors logged a bounded number of times
    await new Promise((r) => setTimeout(r, 6000));
    expect(child.exitCode, "no crash").to.equal(null);
    const errors = logLines(output()).filter((l) => l.level >= 40);
    if (process.env.LP_TEST_VERBOSE)
      process.stderr.write(
        `warn/error lines while failing: ${errors.length} ${JSON.stringify(errors.map((e) => `${String(e.worker ?? "-")} ${e.msg}`))}\n`,
      );
    // per engine thread one "datacenter unreachable" warning, then kafkajs's lines of each attempt, and
    // the attempts back off (0.5 s doubling): about 3 lines per attempt, a dozen attempts at most here
    const unreachable = errors.filter((l) => l.msg === "datacenter unreachable");
    expect(unreachable.length, "one warning per engine").to.be.within(1, 4);
    expect(errors.length, JSON.stringify(errors.slice(0, 5))).to.be.within(1, 60);
    for (const path of ["/healthz", "/status", "/metrics"]) {
      expect(await (await fetch(`${url}${path}`)).text(), path).not.to.include(password);
    }
    expect(output()).not.to.include(password);

    await write(sec1.security.passwordFile);
    const keys = await collectKeys("sec2", topic);
    await produce("sec1", topic, total / 2, total / 2, partitions);
    await waitFor(
      async () => (await fetch(`${url}/healthz`)).status === 200,
      30_000,
      "/healthz 200 after the fix",
    );
    await expectExactly(keys, total, 60_000);
    expect(child.exitCode).to.equal(null);
    expect(output()).not.to.include(password);
  });
});
