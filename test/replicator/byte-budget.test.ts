/** The bytes-in-flight budget of a destination (replicator/byte-budget.ts): pure logic, no Kafka. */
import { expect } from "chai";
import { ByteBudget } from "../../replicator/byte-budget.js";

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe("replicator back-pressure (ByteBudget)", () => {
  it("takes bytes while they fit; a slice that does not fit waits until enough were given back", async () => {
    const budget = new ByteBudget(100);
    await budget.acquire(60);
    await budget.acquire(40);
    expect(budget.inFlight).to.equal(100);
    let granted = false;
    const waiting = budget.acquire(30).then(() => (granted = true));
    await turn();
    expect(granted).to.equal(false);
    expect(budget.queued).to.equal(1);
    budget.release(20); // 80 in flight: 30 more do not fit
    await turn();
    expect(granted).to.equal(false);
    budget.release(40); // 40 in flight: they fit
    await waiting;
    expect(budget.inFlight).to.equal(70);
  });

  it("serves waiters in order: a small slice does not overtake a large one waiting before it", async () => {
    const budget = new ByteBudget(100);
    await budget.acquire(90);
    const order: string[] = [];
    const large = budget.acquire(50).then(() => order.push("large"));
    const small = budget.acquire(5).then(() => order.push("small"));
    await turn();
    expect(order).to.deep.equal([]); // 5 would fit, but the large slice waits first
    budget.release(90);
    await Promise.all([large, small]);
    expect(order).to.deep.equal(["large", "small"]);
    expect(budget.inFlight).to.equal(55);
  });

  it("a slice larger than the whole budget goes alone, once nothing else is in flight", async () => {
    const budget = new ByteBudget(100);
    await budget.acquire(10);
    let granted = false;
    const huge = budget.acquire(500).then(() => (granted = true));
    await turn();
    expect(granted).to.equal(false);
    budget.release(10);
    await huge;
    expect(budget.inFlight).to.equal(500);
    let next = false;
    const after = budget.acquire(1).then(() => (next = true));
    await turn();
    expect(next).to.equal(false);
    budget.release(500);
    await after;
    expect(budget.inFlight).to.equal(1);
  });

  it("refuses a limit below one byte", () => {
    expect(() => new ByteBudget(0)).to.throw(RangeError);
    expect(() => new ByteBudget(Number.NaN)).to.throw(RangeError);
  });
});
