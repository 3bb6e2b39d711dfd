/**
 * replicator/pool.ts's engine threads, with a stand-in entry script (test/fixtures/short-lived-engine.ts)
 * instead of a replication engine: real worker threads and the real message protocol, no Kafka. The pool
 * with real engines is tested end to end in cli.test.ts ("replicator.workers").
 */
import { expect } from "chai";
import { pino } from "pino";
import { Writable } from "node:stream";
import { EngineThread } from "../../replicator/pool.js";
import { parseConfig } from "../../replicator/config.js";

const config = parseConfig({
  datacenters: [{ name: "dc1", brokers: ["127.0.0.1:1"] }],
  replication: [],
  registry: { enabled: true },
});
const ENTRY = new URL("../fixtures/short-lived-engine.ts", import.meta.url);

function capturingLogger(): { logger: pino.Logger; lines: () => { msg: string; worker?: number }[] } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      out.push(chunk.toString());
      done();
    },
  });
  const logger = pino({ level: "info" }, stream);
  return {
    logger,
    lines: () =>
      out
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { msg: string; worker?: number }),
  };
}

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("replicator pool: engine threads", function () {
  this.timeout(30_000);

  it("answers through the thread, starts a thread that died again, and stops it", async () => {
    const { logger, lines } = capturingLogger();
    const engine = new EngineThread(1, 2, config, "info", logger, ENTRY);
    await engine.start();
    const first = (await engine.health()).datacenters[0]?.name;
    expect(first).to.match(/^thread-\d+$/);

    // The stand-in dies on "status": the pending request fails with the reason, the thread is restarted.
    let failure: unknown;
    await engine.status(false).catch((err: unknown) => (failure = err));
    expect(String(failure)).to.match(/engine 1 exited \(code 1\)/);
    const second = await until(
      async () => {
        const name = (await engine.health()).datacenters[0]?.name;
        return name !== undefined && name !== first ? name : undefined;
      },
      10_000,
      "the restarted thread",
    );
    expect(second).to.match(/^thread-\d+$/);
    expect(
      lines().some((l) => l.msg === "replication engine thread exited; restarting it" && l.worker === 1),
    ).to.equal(true);

    await engine.stop();
    // Stopped on purpose: no answer any more, and no restart.
    await new Promise((r) => setTimeout(r, 1500));
    let afterStop: unknown;
    await engine.health().catch((err: unknown) => (afterStop = err));
    expect(String(afterStop)).to.contain("engine 1 is not running");
    expect(lines().filter((l) => l.msg === "replication engine thread exited; restarting it")).to.have.length(
      1,
    );
  });

  it("rejects a request the engine refuses, naming the engine", async () => {
    const { logger } = capturingLogger();
    const engine = new EngineThread(2, 3, config, "info", logger, ENTRY);
    await engine.start();
    let err: unknown;
    await engine.metrics().catch((e: unknown) => (err = e));
    expect(String(err)).to.contain("engine 2: unsupported op metrics");
    await engine.stop();
  });
});
