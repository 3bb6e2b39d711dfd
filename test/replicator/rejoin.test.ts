import { expect } from "chai";
import { planRejoin } from "../../replicator/rejoin.js";

const map = (entries: [number, string][]): Map<number, string> => new Map(entries);

describe("planRejoin (at-least-once positions after a rejoin)", () => {
  it("the first join seeks nothing: every partition starts from the group's position", () => {
    expect(planRejoin(undefined, [0, 1], map([]), map([]))).to.deep.equal({ seeks: [], forget: [] });
  });

  it("a kept partition resumes at its acknowledged position when the group has not committed it", () => {
    const plan = planRejoin(
      [0, 1, 2],
      [0, 1, 2],
      map([
        [0, "10"],
        [1, "20"],
        [2, "30"],
      ]),
      map([
        [0, "10"], // committed already: kafkajs resumes there anyway
        [1, "15"], // commit trails the acknowledgement
      ]), // 2: never committed
    );
    expect(plan.seeks).to.deep.equal([
      { partition: 1, offset: "20" },
      { partition: 2, offset: "30" },
    ]);
    expect(plan.forget).to.deep.equal([]);
  });

  it("a partition that was away resumes from the group's position, and a lost one is forgotten", () => {
    const plan = planRejoin(
      [0, 1],
      [1, 2],
      map([
        [0, "7"],
        [1, "8"],
        [2, "9"], // acknowledged in an earlier generation, away since
      ]),
      map([]),
    );
    expect(plan.seeks).to.deep.equal([{ partition: 1, offset: "8" }]);
    expect(plan.forget).to.deep.equal([0]);
  });
});
