/**
 * The demo scenario a person can follow, played against a running {@link Platform}:
 *   1. issue licenses over REST (progress bars: accepted, confirmed on-chain);
 *   2. show how they spread over the chains and why (policy and reason per license);
 *   3. show the license events arriving in dc2 and the read replica answering lookups and verify;
 *   4. create a new application topic in dc1 and show it discovered and replicated to dc2.
 * Each step reports ok or failed; the caller decides what a failure means (`--once` exits non-zero).
 */
import { errorText } from "../common/log.js";
import { randomBytes, randomUUID } from "node:crypto";
import { Wallet } from "ethers";
import type { Admin } from "kafkajs";
import { createKafka, SILENT_LOGGER } from "../kafka/client.js";
import { LaunchError } from "../launchers/errors.js";
import { EVENTS_TOPIC, PRIMARY_DC, REPLICA_DC, type Platform } from "./topology.js";

export interface StepResult {
  name: string;
  ok: boolean;
  detail: string;
  ms: number;
}

export interface ScenarioOptions {
  licenses?: number;
  concurrency?: number;
  /** Where the person reads along; progress bars redraw in place on a TTY. */
  out?: NodeJS.WriteStream;
  timeoutMs?: number;
}

export interface ScenarioResult {
  ok: boolean;
  steps: StepResult[];
  /** Ids of the licenses issued (for follow-up checks such as the replica failover test). */
  licenseIds: string[];
}

interface LicenseView {
  id: string;
  status: "accepted" | "submitted" | "confirmed" | "failed";
  chainId: number;
  policy: string;
  reason: string;
  tokenId?: string;
  error?: { code: string; message: string };
}

class ProgressBar {
  private last = -1;
  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly label: string,
    private readonly total: number,
  ) {}

  update(done: number): void {
    const width = 30;
    const filled = Math.round((done / this.total) * width);
    const line = `  ${this.label.padEnd(22)} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${this.total}`;
    if (this.out.isTTY) {
      this.out.write(`\r${line}`);
      if (done === this.total) this.out.write("\n");
    } else {
      // Not a terminal (CI, a log file): one line per 25 %.
      const quarter = Math.floor((done / this.total) * 4);
      if (quarter !== this.last) {
        this.last = quarter;
        this.out.write(`${line}\n`);
      }
    }
  }
}

async function api<T>(
  base: string,
  key: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: response.status, body: (await response.json()) as T };
}

async function poll<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new LaunchError("SCENARIO_STEP_FAILED", `${what}: not done after ${timeoutMs} ms${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function sumEndOffsets(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, p) => sum + Number(p.high), 0);
}

export async function runScenario(
  platform: Platform,
  options: ScenarioOptions = {},
): Promise<ScenarioResult> {
  const out = options.out ?? process.stdout;
  const total = options.licenses ?? 60;
  const concurrency = options.concurrency ?? 12;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const steps: StepResult[] = [];
  const say = (line = ""): void => void out.write(`${line}\n`);
  const licenses: LicenseView[] = [];

  const step = async (name: string, body: () => Promise<string>): Promise<boolean> => {
    say(`\n== ${name}`);
    const started = Date.now();
    try {
      const detail = await body();
      steps.push({ name, ok: true, detail, ms: Date.now() - started });
      say(`   ok: ${detail}`);
      return true;
    } catch (error) {
      const detail = errorText(error);
      steps.push({ name, ok: false, detail, ms: Date.now() - started });
      say(`   FAILED: ${detail}`);
      return false;
    }
  };
  const { primary, replica, apiKeys } = platform;

  // 1 ---------------------------------------------------------------------------------------------
  const issued = await step(
    `1. Issue ${total} licenses over REST (POST ${primary.url}/v1/licenses)`,
    async () => {
      const accepted = new ProgressBar(out, "accepted (202)", total);
      let next = 0;
      let done = 0;
      const worker = async (): Promise<void> => {
        while (next < total) {
          const index = next++;
          const { status, body } = await api<LicenseView>(
            primary.url,
            apiKeys.client,
            "POST",
            "/v1/licenses",
            { productId: (index % 2) + 1, licensee: Wallet.createRandom().address },
            { "idempotency-key": randomUUID() },
          );
          if (status !== 202 && status !== 201) {
            throw new LaunchError(
              "SCENARIO_STEP_FAILED",
              `POST /v1/licenses answered ${status} ${JSON.stringify(body)}`,
            );
          }
          licenses[index] = body;
          accepted.update(++done);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));

      const confirmed = new ProgressBar(out, "confirmed on-chain", total);
      let confirmedCount = 0;
      await Promise.all(
        licenses.map(async (license, index) => {
          licenses[index] = await poll(`license ${license.id}`, timeoutMs, async () => {
            const { body } = await api<LicenseView>(
              primary.url,
              apiKeys.client,
              "GET",
              `/v1/licenses/${license.id}`,
            );
            if (body.status === "failed")
              throw new LaunchError(
                "SCENARIO_STEP_FAILED",
                `license ${license.id} failed: ${body.error?.message}`,
              );
            return body.status === "confirmed" ? body : undefined;
          });
          confirmed.update(++confirmedCount);
        }),
      );
      return `${total} licenses accepted and confirmed as NFTs`;
    },
  );

  // 2 ---------------------------------------------------------------------------------------------
  if (issued) {
    await step("2. How the licenses spread over the chains, and why", async () => {
      const byChain = new Map<number, LicenseView[]>();
      for (const license of licenses)
        byChain.set(license.chainId, [...(byChain.get(license.chainId) ?? []), license]);
      say("   chain     licenses  policy    reason (first license on that chain)");
      for (const chain of platform.chains.chains) {
        const list = byChain.get(chain.chainId) ?? [];
        const first = list[0];
        say(
          `   ${String(chain.chainId).padEnd(9)} ${String(list.length).padStart(8)}  ${(first?.policy ?? "-").padEnd(9)} ${first?.reason ?? "-"}`,
        );
      }
      const used = [...byChain.keys()].length;
      if (used < 2)
        throw new LaunchError(
          "SCENARIO_STEP_FAILED",
          `all licenses landed on ${used} chain(s); the weighted policy spreads them`,
        );
      return `${used} chains used; every license records the policy and reason that chose its chain`;
    });
  }

  // 3 ---------------------------------------------------------------------------------------------
  const replicatedTopic = `${PRIMARY_DC}.${EVENTS_TOPIC}`;
  await step(
    `3. License events replicated to ${REPLICA_DC} (${replicatedTopic}); the replica answers`,
    async () => {
      if (!issued) throw new LaunchError("SCENARIO_STEP_FAILED", "no licenses were issued in step 1");
      const kafka = createKafka(
        {
          clientId: "platform-scenario",
          brokers: platform.brokersOf(REPLICA_DC),
          security: platform.clientSecurityOf(REPLICA_DC),
        },
        SILENT_LOGGER,
      );
      const consumer = kafka.consumer({ groupId: `scenario-${randomBytes(4).toString("hex")}` });
      const issuedIds = new Set(licenses.map((l) => l.id));
      const counts = new Map<string, number>();
      const seenIssued = new Set<string>();
      const started = Date.now();
      try {
        await poll(`topic ${replicatedTopic} in ${REPLICA_DC}`, timeoutMs, async () => {
          const admin = kafka.admin();
          await admin.connect();
          try {
            return (await admin.listTopics()).includes(replicatedTopic) ? true : undefined;
          } finally {
            await admin.disconnect();
          }
        });
        await consumer.connect();
        await consumer.subscribe({ topic: replicatedTopic, fromBeginning: true });
        const allIssued = new Promise<void>((resolve) => {
          void consumer.run({
            eachMessage: async ({ message }) => {
              const event = JSON.parse(String(message.value)) as {
                type: string;
                licenseId?: string;
                id?: string;
              };
              counts.set(event.type, (counts.get(event.type) ?? 0) + 1);
              const licenseId = event.licenseId ?? event.id;
              if (/issued|confirmed/.test(event.type) && licenseId && issuedIds.has(licenseId))
                seenIssued.add(licenseId);
              if (seenIssued.size === issuedIds.size) resolve();
            },
          });
        });
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new LaunchError(
                  "SCENARIO_STEP_FAILED",
                  `only ${seenIssued.size}/${issuedIds.size} issued events arrived`,
                ),
              ),
            timeoutMs,
          );
        });
        try {
          await Promise.race([allIssued, timedOut]);
        } finally {
          clearTimeout(timer);
        }
      } finally {
        await consumer.disconnect();
      }
      say(`   events in ${REPLICA_DC}: ${[...counts].map(([type, n]) => `${type} ${n}`).join(", ")}`);
      say(`   all ${issuedIds.size} issued events seen in ${REPLICA_DC} within ${Date.now() - started} ms`);

      // The replica in dc2 serves lookups from the replicated stream, and verify from the chain.
      const found = await poll("replica lookups", timeoutMs, async () => {
        let n = 0;
        for (const license of licenses) {
          const { status, body } = await api<LicenseView>(
            replica.url,
            apiKeys.client,
            "GET",
            `/v1/licenses/${license.id}`,
          );
          if (status === 200 && body.status === "confirmed" && body.tokenId === license.tokenId) n++;
        }
        return n === licenses.length ? n : undefined;
      });
      const sample = licenses[0]!;
      const verify = await api<{ result?: string; code?: string; valid?: boolean }>(
        replica.url,
        apiKeys.client,
        "GET",
        `/v1/licenses/${sample.id}/verify`,
      );
      const result = verify.body.result ?? verify.body.code;
      say(
        `   replica ${replica.url}: ${found}/${licenses.length} licenses found; verify ${sample.id} → ${result}`,
      );
      if (result !== "VALID")
        throw new LaunchError(
          "SCENARIO_STEP_FAILED",
          `replica verify answered ${verify.status} ${JSON.stringify(verify.body)}`,
        );
      return `events replicated, replica serves ${found} lookups and verifies on-chain`;
    },
  );

  // 4 ---------------------------------------------------------------------------------------------
  await step(
    `4. A new application appears in ${PRIMARY_DC}: discovered and replicated to ${REPLICA_DC}`,
    async () => {
      const topic = `orders-${randomBytes(3).toString("hex")}`;
      const target = `${PRIMARY_DC}.${topic}`;
      const records = 100;
      const source = createKafka(
        {
          clientId: "platform-scenario",
          brokers: platform.brokersOf(PRIMARY_DC),
          security: platform.clientSecurityOf(PRIMARY_DC),
        },
        SILENT_LOGGER,
      );
      const destination = createKafka(
        {
          clientId: "platform-scenario",
          brokers: platform.brokersOf(REPLICA_DC),
          security: platform.clientSecurityOf(REPLICA_DC),
        },
        SILENT_LOGGER,
      );
      const sourceAdmin = source.admin();
      const destinationAdmin = destination.admin();
      const producer = source.producer({ idempotent: true });
      await Promise.all([sourceAdmin.connect(), destinationAdmin.connect(), producer.connect()]);
      try {
        // A loaded broker may answer "does not host this topic-partition" until the new topic's leaders
        // are known everywhere: both calls are retried (creating an existing topic is a no-op; a re-sent
        // batch can only add records, and the check below counts at least `records`).
        const created = Date.now();
        await poll(`create ${topic} in ${PRIMARY_DC}`, timeoutMs, async () => {
          await sourceAdmin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
          return true;
        });
        say(`   created topic ${topic} (3 partitions) in ${PRIMARY_DC}, producing ${records} records`);
        await poll(`produce to ${topic}`, timeoutMs, async () => {
          await producer.send({
            topic,
            messages: Array.from({ length: records }, (_, i) => ({
              key: `order-${i}`,
              value: JSON.stringify({ order: i }),
            })),
          });
          return true;
        });
        const replicated = new ProgressBar(out, `${target} in ${REPLICA_DC}`, records);
        await poll(`${target} in ${REPLICA_DC}`, timeoutMs, async () => {
          if (!(await destinationAdmin.listTopics()).includes(target)) return undefined;
          const n = await sumEndOffsets(destinationAdmin, target);
          replicated.update(Math.min(n, records));
          return n >= records ? n : undefined;
        });
        const ms = Date.now() - created;
        return `${topic} discovered and all ${records} records replicated to ${REPLICA_DC} as ${target} in ${ms} ms`;
      } finally {
        await Promise.all([producer.disconnect(), sourceAdmin.disconnect(), destinationAdmin.disconnect()]);
      }
    },
  );

  const ok = steps.every((s) => s.ok);
  say(`\n== Summary: ${steps.filter((s) => s.ok).length}/${steps.length} steps ok`);
  for (const s of steps) say(`   ${s.ok ? "ok    " : "FAILED"} ${s.name} (${(s.ms / 1000).toFixed(1)} s)`);
  return { ok, steps, licenseIds: licenses.filter(Boolean).map((l) => l.id) };
}
