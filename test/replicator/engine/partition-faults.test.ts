/** The paused partitions of a pipeline (replicator/engine/partition-faults.ts), with a fake consumer control. */
import { expect } from "chai";
import { pino } from "pino";
import { SliceFailure } from "../../../replicator/engine/delivery.js";
import { PartitionFaults } from "../../../replicator/engine/partition-faults.js";
import type { Pipeline } from "../../../replicator/plan.js";
import { fakeContext } from "./fakes.js";

const pipeline = { id: "dc1/t->dc2/t", sourceDc: "dc1", destinationDc: "dc2" } as Pipeline;

function faultsWithControl(answers = true) {
  const calls: string[] = [];
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const faults = new PartitionFaults(fakeContext(), pipeline, logger, {
    pause: (p) => calls.push(`pause ${p}`),
    resume: (p, offset) => calls.push(`resume ${p} at ${offset ?? "acked"}`),
    acknowledge: (p, offset) => calls.push(`ack ${p} ${offset}`),
    stopping: () => false,
    suspect: async () => {
      calls.push("suspect");
      return answers;
    },
  });
  return { faults, calls, lines };
}

describe("engine partition faults", () => {
  it("a retriable failure pauses its partition, lets the destination be checked, and retries after the backoff", async () => {
    const { faults, calls } = faultsWithControl();
    faults.failed(1, new SliceFailure("40", new Error("connection refused")));
    expect(calls).to.deep.equal(["pause 1", "ack 1 40", "suspect"]);
    expect(faults.byPartition.get(1)).to.include({ state: "retrying", offset: "40" });
    // The first retry comes after 250–500 ms (retryDelayMs(0)).
    await new Promise((r) => setTimeout(r, 600));
    expect(calls.at(-1)).to.equal("resume 1 at 40");
    expect(faults.has(1)).to.equal(false);
    faults.close();
  });

  it("one warn line per failing partition, none while its datacenter is out of reach (that has its own line)", async () => {
    for (const answers of [true, false]) {
      const { faults, lines } = faultsWithControl(answers);
      faults.failed(0, new SliceFailure(undefined, new Error("down")));
      faults.failed(0, new SliceFailure(undefined, new Error("down")));
      await new Promise((r) => setImmediate(r));
      const warns = lines.filter((l) => l.level === 40).map((l) => l.msg);
      expect(warns, `datacenter answers: ${answers}`).to.deep.equal(
        answers ? ["partition not replicated; retrying it alone"] : [],
      );
      faults.close();
    }
  });

  it("retryNow (the destination is back) resumes every retrying partition at once, not a stopped one", () => {
    const { faults, calls } = faultsWithControl();
    for (let i = 0; i < 5; i++) faults.failed(0, new SliceFailure(undefined, new Error("down")));
    faults.failed(2, new SliceFailure("7", new Error("down")));
    faults.byPartition.set(3, {
      state: "stopped",
      offset: "9",
      reason: "MESSAGE_TOO_LARGE",
      error: "x",
      since: "",
    });
    calls.length = 0;
    faults.retryNow();
    expect(calls).to.deep.equal(["resume 0 at acked", "resume 2 at 7"]);
    expect([...faults.byPartition.keys()]).to.deep.equal([3]);
    // The timers of the resumed partitions are gone: nothing resumes a second time.
    faults.close();
  });
});
