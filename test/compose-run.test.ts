/**
 * docker-compose.yml run for real: images built (local stand-ins from scripts/compose-images unless
 * NODE_IMAGE / KAFKA_IMAGE name others), `up -d`, every healthcheck waited on, the platform scenario of
 * `./scripts/run` (platform/scenario.ts) played against the published 127.0.0.1 ports, then dc1's
 * licensing container stopped and the dc2 replica shown still serving; `down -v` at the end, also on
 * failure, and a dockerd started here is stopped again.
 *
 * Needs a Docker engine: a running one, or root and `dockerd` (as here and in CI). Without, it says why
 * in one line and is skipped; the parser checks of test/compose.test.ts run regardless.
 */
import { expect } from "chai";
import { PassThrough } from "node:stream";
import { runScenario, type ScenarioResult } from "../platform/scenario.js";
import type { Platform } from "../platform/topology.js";
import {
  ComposeProject,
  composeCommand,
  engineUnavailable,
  ensureEngine,
  portFree,
  run,
  type Engine,
} from "./support/compose.js";

const PROJECT = "lp-compose-test";
const PRIMARY = "http://127.0.0.1:8080";
const REPLICA = "http://127.0.0.1:8081";
/** The public demo keys of deploy/compose/README.md (their hashes are in the licensing configs). */
const DEMO_KEYS = { client: "demo-client-key-change-me", admin: "demo-admin-key-change-me" };
const CHAINS = [
  { name: "chain-1", chainId: 31337, port: 8545, rpcUrl: "http://127.0.0.1:8545" },
  { name: "chain-2", chainId: 31338, port: 8546, rpcUrl: "http://127.0.0.1:8546" },
];
const BROKERS: Record<string, string[]> = { dc1: ["127.0.0.1:19092"], dc2: ["127.0.0.1:19093"] };
const PUBLISHED = [8080, 8081, 8545, 8546, 9101, 9102, 19092, 19093];
const LONG_RUNNING = [
  "kafka-dc1",
  "kafka-dc2",
  "chain-1",
  "chain-2",
  "replicator-dc1",
  "replicator-dc2",
  "licensing-dc1",
  "licensing-dc2-replica",
];

const say = (line: string): void => void process.stdout.write(`      ${line}\n`);
const seconds = (ms: number): string => `${(ms / 1000).toFixed(0)} s`;

/** The scenario's view of the platform, pointed at the containers' published ports. */
function composePlatform(compose: ComposeProject): Platform {
  const unused = async (): Promise<never> => {
    throw new Error("not available against the compose topology");
  };
  const endpoint = (name: string, url: string, service: string) => ({
    name,
    url,
    process: {
      name,
      pid: 0,
      exited: new Promise<never>(() => undefined),
      running: () => true,
      tail: () => "",
      stop: async () => {
        await compose.must(["stop", "-t", "20", service], 120_000);
        return { code: 0, signal: null };
      },
    },
  });
  return {
    chains: { chains: CHAINS, pids: [], stop: async () => undefined },
    kafka: {
      clusters: Object.entries(BROKERS).map(([name, brokers]) => ({ name, brokers })),
      pids: [],
      kill: unused,
      restart: unused,
      stop: async () => undefined,
    },
    deploymentsFile: "/deployments/compose.json (in the deployments volume)",
    contracts: new Map(),
    primary: endpoint("licensing-dc1", PRIMARY, "licensing-dc1"),
    replica: endpoint("licensing-dc2-replica", REPLICA, "licensing-dc2-replica"),
    replicators: [
      endpoint("replicator-dc1", "http://127.0.0.1:9101", "replicator-dc1"),
      endpoint("replicator-dc2", "http://127.0.0.1:9102", "replicator-dc2"),
    ],
    apiKeyFiles: { client: "(deploy/compose/README.md)", admin: "(deploy/compose/README.md)" },
    apiKeys: DEMO_KEYS,
    brokersOf: (dc: string) => {
      const brokers = BROKERS[dc];
      if (!brokers) throw new Error(`no datacenter ${dc}`);
      return brokers;
    },
    // the compose demo's brokers are plaintext
    securityOf: () => undefined,
    clientSecurityOf: () => ({}),
    stop: unused,
  };
}

async function get<T>(url: string): Promise<{ status: number; body: T }> {
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${DEMO_KEYS.client}` },
    signal: AbortSignal.timeout(15_000),
  });
  return { status: response.status, body: (await response.json()) as T };
}

async function rpc<T>(url: string, method: string, params: unknown[]): Promise<T> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await response.json()) as { result?: T; error?: { message: string } };
  if (body.error) throw new Error(`${method} on ${url}: ${body.error.message}`);
  return body.result as T;
}

describe("docker-compose.yml, run for real (images, up, the scenario, failover, down)", function () {
  // Cold image builds on 2 busy cores take minutes; every step below has its own, tighter bound.
  this.timeout(40 * 60_000);

  let engine: Engine | undefined;
  let compose: ComposeProject | undefined;
  let scenario: ScenarioResult | undefined;
  const output: string[] = [];

  before(async function () {
    const why = await engineUnavailable();
    if (why) {
      say(`compose test skipped: ${why}`);
      this.skip();
    }
    engine = await ensureEngine(say);
    const command = await composeCommand();
    // A run that was killed may have left the project behind: start from nothing (frees its ports).
    await new ComposeProject(command, PROJECT, process.env).compose(
      ["down", "-v", "--remove-orphans", "-t", "5"],
      180_000,
    );
    for (const port of PUBLISHED) {
      if (!(await portFree(port)))
        throw new Error(`127.0.0.1:${port} is in use: docker-compose.yml publishes it (stop what holds it)`);
    }

    // The base images: NODE_IMAGE and KAFKA_IMAGE from the environment (e.g. the official ones), else
    // the local stand-ins of scripts/compose-images (built once, then reused).
    let t = Date.now();
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (!env.NODE_IMAGE || !env.KAFKA_IMAGE) {
      const images = await run("bash", ["scripts/compose-images"], { timeoutMs: 25 * 60_000 });
      if (images.code !== 0)
        throw new Error(
          `scripts/compose-images failed (exit ${images.code}):\n${images.stderr.slice(-4000)}`,
        );
      for (const [, name, value] of images.stdout.matchAll(/(NODE_IMAGE|KAFKA_IMAGE)=(\S+)/g))
        env[name!] ||= value;
    }
    say(`base images (${env.NODE_IMAGE}, ${env.KAFKA_IMAGE}) ready in ${seconds(Date.now() - t)}`);
    compose = new ComposeProject(command, PROJECT, env);

    t = Date.now();
    await compose.must(["build"], 25 * 60_000);
    say(`app images built (${compose.command.join(" ")} build) in ${seconds(Date.now() - t)}`);

    t = Date.now();
    // `up -d` itself waits for the depends_on conditions; the loop below then waits for everything.
    const up = await compose.compose(["up", "-d", "--no-build"], 8 * 60_000);
    const healthyMs = await compose
      .waitHealthy({ longRunning: LONG_RUNNING, oneShot: ["deployer"] }, 5 * 60_000)
      .catch((error: Error) => {
        throw new Error(
          `${error.message}\n(up -d exited ${up.code}: ${`${up.stdout}\n${up.stderr}`.trim().split("\n").slice(-10).join("\n")})`,
        );
      });
    say(
      `up -d: ${LONG_RUNNING.length} services healthy, deployer done, in ${seconds(Date.now() - t)} (${seconds(healthyMs)} waiting)`,
    );
  });

  // Runs when a step failed too; a failure to clean up fails the run.
  after(async function () {
    const problems: string[] = [];
    if (compose) {
      const down = await compose.compose(["down", "-v", "--remove-orphans", "-t", "20"], 5 * 60_000);
      if (down.code !== 0) problems.push(`down -v failed (exit ${down.code}): ${down.stderr.slice(-2000)}`);
      const left = await compose.leftovers();
      if (left.length > 0) problems.push(`left behind after down -v: ${left.join(", ")}`);
      else say("down -v: no container, network or volume of the project left");
    }
    await engine?.stop();
    if (problems.length > 0) throw new Error(problems.join("\n"));
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed" && output.length > 0) {
      say("scenario output:");
      for (const line of output.join("").split("\n")) say(`  ${line}`);
    }
  });

  it("deployed the contract to both chains (the deployer's hand-off via the deployments volume)", async function () {
    const chains = await get<{ items: { chainId: number; contract: string; healthy: boolean }[] }>(
      `${PRIMARY}/v1/chains`,
    );
    expect(chains.status).to.equal(200);
    expect(chains.body.items.map((c) => c.chainId).sort()).to.deep.equal([31337, 31338]);
    for (const chain of CHAINS) {
      const item = chains.body.items.find((c) => c.chainId === chain.chainId)!;
      expect(item.healthy, `${chain.name} healthy for the service`).to.equal(true);
      expect(Number(await rpc<string>(chain.rpcUrl, "eth_chainId", [])), chain.rpcUrl).to.equal(
        chain.chainId,
      );
      const code = await rpc<string>(chain.rpcUrl, "eth_getCode", [item.contract, "latest"]);
      expect(code.length, `LicenseToken code at ${item.contract} on ${chain.rpcUrl}`).to.be.greaterThan(2);
    }
  });

  it("plays the platform scenario against 127.0.0.1:8080/8081 and the brokers: all steps ok", async function () {
    const sink = Object.assign(new PassThrough(), { isTTY: false });
    sink.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    const started = Date.now();
    scenario = await runScenario(composePlatform(compose!), {
      licenses: 20,
      concurrency: 6,
      out: sink as unknown as NodeJS.WriteStream,
      timeoutMs: 180_000,
    });
    for (const step of scenario.steps) say(`${step.ok ? "ok    " : "FAILED"} ${step.name}: ${step.detail}`);
    expect(
      scenario.steps.filter((s) => !s.ok).map((s) => `${s.name}: ${s.detail}`),
      "failed steps",
    ).to.deep.equal([]);
    expect(scenario.steps).to.have.length(4);
    expect(scenario.licenseIds).to.have.length(20);
    // The licenses are on the chains: the service's per-chain confirmed counts add up.
    const chains = await get<{ items: { chainId: number; issued: number }[] }>(`${PRIMARY}/v1/chains`);
    const issued = chains.body.items.map((c) => `${c.chainId}: ${c.issued}`).join(", ");
    expect(
      chains.body.items.reduce((sum, c) => sum + c.issued, 0),
      issued,
    ).to.be.at.least(20);
    say(`licenses confirmed per chain: ${issued}`);
    say(`scenario: ${scenario.steps.length}/4 steps ok in ${seconds(Date.now() - started)}`);
  });

  it("with dc1's licensing container stopped, the dc2 replica still answers lookups and verify", async function () {
    if (!scenario || scenario.licenseIds.length === 0) this.skip();
    await compose!.must(["stop", "-t", "20", "licensing-dc1"], 120_000);
    const down = await fetch(`${PRIMARY}/healthz`, { signal: AbortSignal.timeout(5_000) }).then(
      () => false,
      () => true,
    );
    expect(down, "127.0.0.1:8080 no longer answers").to.equal(true);
    const state = (await compose!.containers()).find((c) => c.service === "licensing-dc1");
    expect(state?.status).to.equal("exited");

    for (const id of scenario!.licenseIds) {
      const { status, body } = await get<{ id: string; status: string; tokenId?: string }>(
        `${REPLICA}/v1/licenses/${id}`,
      );
      expect(status, `replica lookup of ${id}`).to.equal(200);
      expect(body.status).to.equal("confirmed");
      expect(body.tokenId).to.be.a("string");
    }
    const verify = await get<{ code: string }>(`${REPLICA}/v1/licenses/${scenario!.licenseIds[0]}/verify`);
    expect(verify.status).to.equal(200);
    expect(verify.body.code).to.equal("VALID");
    say(
      `dc1 licensing stopped: the replica at ${REPLICA} served ${scenario!.licenseIds.length} lookups and verify`,
    );
  });
});
