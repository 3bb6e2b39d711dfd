import { expect } from "chai";
import { PlatformError, fieldPath } from "../../common/errors.js";
import { Writable } from "node:stream";
import { createLogger, errorFields, errorText } from "../../common/log.js";
import { Wakeable, sleep } from "../../common/time.js";

describe("common: the one error base, error log fields, sleep and wake-up", () => {
  it("fieldPath writes keys with dots and indexes in brackets", () => {
    expect(fieldPath(["chains", 1, "rpcUrl"])).to.equal("chains[1].rpcUrl");
    expect(fieldPath(["replication", 0, "destinations", 1])).to.equal("replication[0].destinations[1]");
    expect(fieldPath([])).to.equal("");
    expect(fieldPath([2])).to.equal("[2]");
  });

  it("a PlatformError carries code, retriable (catalogue or override), field and cause", () => {
    const cause = new Error("socket closed");
    const e = new PlatformError("SOME_CODE", "it failed", false, { field: "a.b", cause });
    expect(e).to.include({ code: "SOME_CODE", retriable: false, field: "a.b", name: "PlatformError" });
    expect(e.cause).to.equal(cause);
    expect(new PlatformError("X", "m", false, { retriable: true }).retriable).to.equal(true);
    expect(new PlatformError("X", "m", true).field).to.equal(undefined);
  });

  it("errorFields gives message, code, field, retriable and the cause chain, no stack", () => {
    const root = Object.assign(new Error("ECONNREFUSED"), { code: "ECONNREFUSED" });
    const mid = new Error("broker down", { cause: root });
    const top = new PlatformError("NOT_ACKNOWLEDGED", "send failed", true, { field: "x", cause: mid });
    const fields = errorFields(top);
    expect(fields).to.deep.equal({
      message: "send failed",
      name: "PlatformError",
      code: "NOT_ACKNOWLEDGED",
      field: "x",
      retriable: true,
      causes: ["broker down", "ECONNREFUSED"],
    });
    expect(JSON.stringify(fields)).not.to.contain("at ");
    expect(errorFields("plain")).to.deep.equal({ message: "plain" });
    expect(errorFields(new Error("x".repeat(2000))).message.length).to.be.below(510);
    expect(errorText(new Error("m"))).to.equal("m");
    expect(errorText(42)).to.equal("42");
  });

  it("createLogger logs err as the fields given (no type or stack added by pino's serializer)", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ level: "info", base: null, timestamp: false }, sink);
    logger.error({ err: errorFields(new PlatformError("X_CODE", "it broke", false)) }, "failed");
    expect(JSON.parse(lines[0]!)).to.deep.equal({
      level: 50,
      err: { message: "it broke", name: "PlatformError", code: "X_CODE", retriable: false },
      msg: "failed",
    });
  });

  it("errorFields stops at five causes (a cyclic cause chain ends)", () => {
    const a = new Error("a") as Error & { cause?: unknown };
    a.cause = a;
    expect(errorFields(a).causes).to.have.length(5);
  });

  it("Wakeable: wake() ends the current sleep; a wake with nobody asleep ends the next one", async () => {
    const w = new Wakeable();
    let t = Date.now();
    const sleeping = w.sleep(5000);
    w.wake();
    await sleeping;
    expect(Date.now() - t).to.be.below(1000);
    w.wake();
    t = Date.now();
    await w.sleep(5000);
    expect(Date.now() - t).to.be.below(1000);
    t = Date.now();
    await w.sleep(30);
    expect(Date.now() - t).to.be.at.least(25);
  });

  it("sleep waits about the given time", async () => {
    const t = Date.now();
    await sleep(30, { unref: true });
    expect(Date.now() - t).to.be.at.least(25);
  });
});
