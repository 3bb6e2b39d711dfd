import { expect } from "chai";
import { DirectProducer } from "../../kafka/direct-producer.js";
import { createKafka } from "../../kafka/client.js";
import { installKafkajsPatches } from "../../kafka/patches/index.js";
import { patchesRefused, VERIFIED_KAFKAJS_VERSION } from "../../kafka/version.js";
import { pino } from "pino";

describe("kafka: the one version guard of the kafkajs patches", () => {
  it("refuses every patch for another kafkajs version or LP_KAFKAJS_PATCHES=off", () => {
    expect(patchesRefused({}, VERIFIED_KAFKAJS_VERSION)).to.equal(undefined);
    expect(patchesRefused({}, "2.3.0")).to.equal(
      `kafkajs 2.3.0 is not the verified ${VERIFIED_KAFKAJS_VERSION}`,
    );
    expect(patchesRefused({ LP_KAFKAJS_PATCHES: "off" }, VERIFIED_KAFKAJS_VERSION)).to.equal(
      "LP_KAFKAJS_PATCHES=off",
    );
  });

  it("package.json pins kafkajs to exactly the verified version", async () => {
    const { readFile } = await import("node:fs/promises");
    const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as {
      dependencies: Record<string, string>;
    };
    expect(pkg.dependencies.kafkajs).to.equal(VERIFIED_KAFKAJS_VERSION);
  });

  it("installs all seven patches with the verified kafkajs (idempotent)", () => {
    const report = installKafkajsPatches({});
    expect(report.refused).to.equal(undefined);
    expect(report.patches.map((p) => [p.patch, p.state.active])).to.deep.equal([
      ["fast produce encoding", true],
      ["ordered header decoding", true],
      ["per-partition produce results", true],
      ["request queue fix", true],
      ["transaction fixes", true],
      ["topic metadata index", true],
      ["linear group bookkeeping", true],
    ]);
    expect(installKafkajsPatches({}).patches.every((p) => p.state.active)).to.equal(true);
  });

  it("with the patches refused, the direct producer falls back to kafkajs's own producer", () => {
    const kafka = createKafka(
      { brokers: ["127.0.0.1:1"], clientId: "guard-test" },
      pino({ level: "silent" }),
    );
    expect(
      DirectProducer.create(kafka, "t", { maxInFlightRequests: 1 }, { LP_KAFKAJS_PATCHES: "off" }),
    ).to.equal(undefined);
    expect(DirectProducer.create(kafka, "t", { maxInFlightRequests: 1 }, {})).to.be.instanceOf(
      DirectProducer,
    );
  });
});
