import { expect } from "chai";
import { OrderedSends } from "../../replicator/ordered-sends.js";

/** A send the test settles by hand. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("OrderedSends (at-least-once pipelining)", () => {
  it("starts a partition's send only after the previous one was acknowledged, and acks in order", async () => {
    const sends = new OrderedSends(3);
    const started: string[] = [];
    const acked: string[] = [];
    const d = [deferred(), deferred(), deferred()];
    for (const [i, name] of ["a", "b", "c"].entries()) {
      await sends.enqueue(
        0,
        () => {
          started.push(name);
          return d[i]!.promise;
        },
        () => acked.push(name),
      );
    }
    await tick();
    expect(started).to.deep.equal(["a"]);
    d[1]!.resolve(); // b's own send is done early, but it has not even started: nothing changes
    await tick();
    expect(started).to.deep.equal(["a"]);
    d[0]!.resolve();
    await tick();
    expect(started).to.deep.equal(["a", "b", "c"]);
    expect(acked).to.deep.equal(["a", "b"]);
    d[2]!.resolve();
    await sends.drain();
    expect(acked).to.deep.equal(["a", "b", "c"]);
    expect(sends.pending).to.equal(0);
  });

  it("runs the sends of different partitions at the same time", async () => {
    const sends = new OrderedSends(1);
    const started: number[] = [];
    const d0 = deferred();
    const d1 = deferred();
    await sends.enqueue(
      0,
      () => (started.push(0), d0.promise),
      () => undefined,
    );
    await sends.enqueue(
      1,
      () => (started.push(1), d1.promise),
      () => undefined,
    );
    await tick();
    expect(started).to.deep.equal([0, 1]);
    d0.resolve();
    d1.resolve();
    await sends.drain();
  });

  it("makes enqueue wait while a partition has `depth` sends open", async () => {
    const sends = new OrderedSends(2);
    const d = [deferred(), deferred()];
    await sends.enqueue(
      0,
      () => d[0]!.promise,
      () => undefined,
    );
    await sends.enqueue(
      0,
      () => d[1]!.promise,
      () => undefined,
    );
    let third = false;
    const queued = sends
      .enqueue(
        0,
        () => Promise.resolve(),
        () => undefined,
      )
      .then(() => {
        third = true;
      });
    await tick();
    expect(third).to.equal(false);
    expect(sends.pending).to.equal(2);
    d[0]!.resolve();
    await queued;
    expect(third).to.equal(true);
    d[1]!.resolve();
    await sends.drain();
    expect(sends.pending).to.equal(0);
  });

  it("after a failure: later sends of the partition are never made, nothing after it is acked, its enqueue rejects; other partitions go on", async () => {
    const failures: unknown[] = [];
    const sends = new OrderedSends(3, (e, partition) => failures.push([e, partition]));
    const started: string[] = [];
    const acked: string[] = [];
    const d = deferred();
    await sends.enqueue(
      0,
      () => (started.push("a"), d.promise),
      () => acked.push("a"),
    );
    await sends.enqueue(
      0,
      async () => void started.push("b"),
      () => acked.push("b"),
    );
    const boom = new Error("NOT_ACKNOWLEDGED");
    d.reject(boom);
    await sends.drain();
    expect(started).to.deep.equal(["a"]);
    expect(acked).to.deep.equal([]);
    expect(failures).to.deep.equal([[boom, 0]]);
    expect(sends.failureOf(0)).to.equal(boom);
    expect(sends.failureOf(1)).to.equal(undefined);
    let rejected: unknown;
    await sends
      .enqueue(
        0,
        () => Promise.resolve(),
        () => undefined,
      )
      .catch((e: unknown) => {
        rejected = e;
      });
    expect(rejected).to.equal(boom);
    // another partition is not stopped by partition 0's failure
    await sends.enqueue(
      1,
      async () => void started.push("c"),
      () => acked.push("c"),
    );
    await sends.drain();
    expect(started).to.deep.equal(["a", "c"]);
    expect(acked).to.deep.equal(["c"]);
    // reset opens partition 0 again
    sends.reset(0);
    await sends.enqueue(
      0,
      async () => void started.push("d"),
      () => acked.push("d"),
    );
    await sends.drain();
    expect(acked).to.deep.equal(["c", "d"]);
    expect(failures).to.have.length(1);
  });

  it("onSettled runs once per queued send: acknowledged, failed, or never made behind a failure", async () => {
    const sends = new OrderedSends(3);
    const settled: string[] = [];
    const d = deferred();
    await sends.enqueue(
      0,
      async () => undefined,
      () => undefined,
      () => settled.push("acked"),
    );
    await sends.enqueue(
      0,
      () => d.promise,
      () => undefined,
      () => settled.push("failed"),
    );
    await sends.enqueue(
      0,
      async () => undefined,
      () => undefined,
      () => settled.push("never made"),
    );
    d.reject(new Error("refused"));
    await sends.drain();
    await tick();
    expect(settled).to.deep.equal(["acked", "failed", "never made"]);
  });

  it("close: a call waiting for room rejects instead of sending after the drain began", async () => {
    const sends = new OrderedSends(1);
    const first = deferred();
    let made = 0;
    await sends.enqueue(
      0,
      () => first.promise,
      () => undefined,
    );
    const waiting = sends.enqueue(
      0,
      async () => {
        made++;
      },
      () => undefined,
    );
    sends.close();
    const drained = sends.drain();
    first.resolve();
    await drained;
    await waiting.then(
      () => expect.fail("enqueue after close must reject"),
      (err: unknown) => expect(String(err)).to.match(/closed/),
    );
    expect(made).to.equal(0);
    expect(sends.pending).to.equal(0);
  });

  it("rejects a depth below 1", () => {
    expect(() => new OrderedSends(0)).to.throw(RangeError, /depth/);
  });
});
