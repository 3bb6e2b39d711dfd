/** The at-least-once commit state machine, with an injected commit (no Kafka). */
import { expect } from "chai";
import { commitRequests, OffsetCommits, type CommitPosition } from "../../../replicator/engine/commits.js";
import { sleep } from "../../../common/time.js";

function harness(options: { intervalMs?: number; failures?: number; commitMs?: number } = {}) {
  const commits: CommitPosition[][] = [];
  const committed: CommitPosition[][] = [];
  let failures = options.failures ?? 0;
  let errors = 0;
  const state = new OffsetCommits({
    commit: async (positions) => {
      commits.push(positions);
      if (options.commitMs) await sleep(options.commitMs);
      if (failures > 0) {
        failures--;
        throw new Error("rebalance in progress");
      }
    },
    intervalMs: () => options.intervalMs ?? 20,
    retryMs: 30,
    onCommitted: (positions) => committed.push(positions),
    onError: () => errors++,
  });
  return { state, commits, committed, errors: () => errors };
}

describe("engine/commits", () => {
  it("coalesces acknowledgements into one commit one interval after the first", async () => {
    const { state, commits, committed } = harness();
    state.acknowledge(0, "10");
    state.acknowledge(1, "5");
    state.acknowledge(0, "12");
    expect(commits).to.deep.equal([]);
    await sleep(60);
    expect(commits).to.deep.equal([
      [
        { partition: 0, offset: "12" },
        { partition: 1, offset: "5" },
      ],
    ]);
    expect(committed).to.have.length(1);
    expect([...state.committed]).to.deep.equal([
      [0, "12"],
      [1, "5"],
    ]);
  });

  it("one commit at a time: acknowledgements during a commit go into the next, only what changed", async () => {
    const { state, commits } = harness({ commitMs: 50 });
    state.acknowledge(0, "1");
    state.acknowledge(1, "1");
    await sleep(35); // the first commit is in flight
    state.acknowledge(0, "2");
    await sleep(150);
    expect(commits).to.deep.equal([
      [
        { partition: 0, offset: "1" },
        { partition: 1, offset: "1" },
      ],
      [{ partition: 0, offset: "2" }],
    ]);
  });

  it("a failed commit is tried again after retryMs; it never rejects", async () => {
    const { state, commits, errors } = harness({ failures: 1 });
    state.acknowledge(0, "7");
    await state.commitNow();
    expect(errors()).to.equal(1);
    expect(state.committed.size).to.equal(0);
    await sleep(80);
    expect(commits).to.have.length(2);
    expect(state.committed.get(0)).to.equal("7");
  });

  it("commitNow commits at once and drops the scheduled commit; nothing to commit makes no call", async () => {
    const { state, commits } = harness({ intervalMs: 1000 });
    await state.commitNow();
    expect(commits).to.deep.equal([]);
    state.acknowledge(0, "3");
    await state.commitNow();
    expect(commits).to.deep.equal([[{ partition: 0, offset: "3" }]]);
    await state.commitNow();
    expect(commits).to.have.length(1);
  });

  it("closed (stopping): no scheduled commit any more, commitNow still commits; forget drops a partition", async () => {
    const { state, commits } = harness();
    state.acknowledge(0, "4");
    state.acknowledge(1, "9");
    state.forget(1);
    state.close();
    state.cancel();
    state.acknowledge(0, "5");
    await sleep(50);
    expect(commits).to.deep.equal([]);
    await state.commitNow();
    expect(commits).to.deep.equal([[{ partition: 0, offset: "5" }]]);
  });
});

describe("a link's commit split into requests of a bounded number of topics", () => {
  it("keeps each topic's positions in one request, in order, at most maxTopics topics each", () => {
    const p = (topic: string, partition: number) => ({ topic, partition, offset: "1" });
    const positions = [p("a", 0), p("b", 0), p("a", 1), p("c", 0), p("d", 0), p("c", 1)];
    expect(commitRequests(positions, 2)).to.deep.equal([
      [p("a", 0), p("b", 0), p("a", 1)],
      [p("c", 0), p("d", 0), p("c", 1)],
    ]);
    expect(commitRequests(positions, 10)).to.have.length(1);
    expect(commitRequests([], 2)).to.deep.equal([]);
  });
});
