/**
 * Unit tests of the exactly-once group commit's coordination (replicator/transactions.ts): which slices
 * share a transaction, the order of the produce requests, and that a failure reaches every slice of the
 * transaction. The transaction here is an in-memory recorder; the end-to-end behaviour against real Kafka
 * (SIGKILL twice, no record lost or duplicated) is in test/replicator/cli.test.ts.
 */
import { expect } from "chai";
import type { Message, Transaction } from "kafkajs";
import { TransactionGroup, type SourcePosition, type TopicRequest } from "../../replicator/transactions.js";

type Event =
  | { txn: number; kind: "send"; values: string[]; topics?: string[] }
  | { txn: number; kind: "offsets"; positions: string[] }
  | { txn: number; kind: "commit" | "abort" };

function recorder(options: { failSendOf?: string } = {}) {
  const events: Event[] = [];
  let next = 0;
  const producer = {
    transaction: async (): Promise<Transaction> => {
      const txn = ++next;
      return {
        sendOffsets: async (args: {
          topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
        }) => {
          events.push({
            txn,
            kind: "offsets",
            positions: args.topics.flatMap((t) =>
              t.partitions.map((p) => `${t.topic}/${p.partition}@${p.offset}`),
            ),
          });
        },
        commit: async () => {
          events.push({ txn, kind: "commit" });
        },
        abort: async () => {
          events.push({ txn, kind: "abort" });
        },
      } as unknown as Transaction;
    },
  };
  const send = async (_txn: Transaction, topicMessages: TopicRequest[]) => {
    const id = events.filter((e) => e.kind === "commit" || e.kind === "abort").length + 1;
    const values = topicMessages.flatMap((t) => t.messages.map((m) => String(m.value)));
    if (options.failSendOf !== undefined && values.includes(options.failSendOf))
      throw new Error("broker said no");
    const topics = topicMessages.map((t) => t.topic);
    events.push({ txn: id, kind: "send", values, ...(topics.some((t) => t !== "out") ? { topics } : {}) });
  };
  return { group: new TransactionGroup(producer, "lp.replicator.x", send), events };
}

const msgs = (...values: string[]): TopicRequest => ({
  topic: "out",
  messages: values.map((value): Message => ({ value })),
});
const pos = (partition: number, offset: number): SourcePosition => ({
  topic: "orders",
  partition,
  offset: String(offset),
});

describe("exactly-once group commit (TransactionGroup)", () => {
  it("slices that arrive together share one transaction: requests in waves, then all positions, one commit", async () => {
    const { group, events } = recorder();
    await Promise.all([
      group.run(pos(0, 10), [msgs("p0-a", "p0-b"), msgs("p0-c")]),
      group.run(pos(1, 20), [msgs("p1-a")]),
      group.run(pos(2, 30), [msgs("p2-a"), msgs("p2-b"), msgs("p2-c")]),
    ]);
    expect(events).to.deep.equal([
      { txn: 1, kind: "send", values: ["p0-a", "p0-b", "p1-a", "p2-a"] },
      { txn: 1, kind: "send", values: ["p0-c", "p2-b"] },
      { txn: 1, kind: "send", values: ["p2-c"] },
      { txn: 1, kind: "offsets", positions: ["orders/0@10", "orders/1@20", "orders/2@30"] },
      { txn: 1, kind: "commit" },
    ]);
  });

  it("slices of several topics share a transaction: each wave is one request holding every target topic", async () => {
    const { group, events } = recorder();
    const of = (topic: string, ...values: string[]): TopicRequest => ({ ...msgs(...values), topic });
    await Promise.all([
      group.run({ topic: "a", partition: 0, offset: "3" }, [of("dc1.a", "a1"), of("dc1.a", "a2")]),
      group.run({ topic: "b", partition: 0, offset: "7" }, [of("dc1.b", "b1")]),
      group.run({ topic: "a", partition: 1, offset: "4" }, [of("dc1.a", "a3")]),
    ]);
    expect(events).to.deep.equal([
      { txn: 1, kind: "send", values: ["a1", "a3", "b1"], topics: ["dc1.a", "dc1.b"] },
      { txn: 1, kind: "send", values: ["a2"], topics: ["dc1.a"] },
      { txn: 1, kind: "offsets", positions: ["a/0@3", "a/1@4", "b/0@7"] },
      { txn: 1, kind: "commit" },
    ]);
  });

  it("a slice that arrives while a transaction commits goes into the next one", async () => {
    const { group, events } = recorder();
    const first = group.run(pos(0, 10), [msgs("first")]);
    // Let the first transaction start (it is scheduled for the next turn of the event loop).
    await new Promise((r) => setImmediate(r));
    const second = group.run(pos(1, 5), [msgs("second")]);
    await Promise.all([first, second]);
    expect(events.filter((e) => e.kind === "commit")).to.have.length(2);
    expect(events.find((e) => e.kind === "send" && e.values.includes("second"))?.txn).to.equal(2);
    expect(events.find((e) => e.kind === "offsets" && e.txn === 2)).to.deep.equal({
      txn: 2,
      kind: "offsets",
      positions: ["orders/1@5"],
    });
  });

  it("a failed send aborts the transaction and every slice in it gets the error; the next one starts clean", async () => {
    const { group, events } = recorder({ failSendOf: "bad" });
    const results = await Promise.allSettled([
      group.run(pos(0, 10), [msgs("good")]),
      group.run(pos(1, 20), [msgs("bad")]),
    ]);
    expect(results.map((r) => r.status)).to.deep.equal(["rejected", "rejected"]);
    expect(results.map((r) => (r.status === "rejected" ? (r.reason as Error).message : ""))).to.deep.equal([
      "broker said no",
      "broker said no",
    ]);
    expect(events.filter((e) => e.kind !== "send")).to.deep.equal([{ txn: 1, kind: "abort" }]);
    await group.run(pos(0, 10), [msgs("again")]);
    expect(events.slice(-1)).to.deep.equal([{ txn: 2, kind: "commit" }]);
  });
});

describe("exactly-once group commit: the producer after a failed transaction", () => {
  it("a failure after every record was sent (positions or commit) is TRANSACTION_OUTCOME_UNKNOWN, not the records'", async () => {
    const producer = {
      transaction: async (): Promise<Transaction> =>
        ({
          sendOffsets: async () => undefined,
          commit: async () => {
            throw new TypeError("Cannot read properties of undefined (reading 'resolve')");
          },
          abort: async () => undefined,
        }) as unknown as Transaction,
    };
    const group = new TransactionGroup(producer, "lp.replicator.x", async () => undefined);
    await group.run(pos(0, 5), [msgs("a")]).then(
      () => expect.fail("the commit failed"),
      (err: unknown) => {
        expect(err).to.have.property("code", "TRANSACTION_OUTCOME_UNKNOWN");
        expect((err as Error).cause).to.be.instanceOf(TypeError);
      },
    );
  });

  it("a failed round renews the producer; renewed too late (destination away), the next round renews it first, settled() included", async () => {
    const log: string[] = [];
    let producers = 0;
    let renewals = 0;
    const producerNamed = (name: string, failCommit: boolean) => ({
      transaction: async (): Promise<Transaction> => {
        log.push(`${name}: transaction`);
        return {
          sendOffsets: async () => undefined,
          commit: async () => {
            if (failCommit) throw new Error("connection lost (the commit may have gone through)");
            log.push(`${name}: commit`);
          },
          abort: async () => {
            throw new Error("connection lost");
          },
        } as unknown as Transaction;
      },
    });
    const group = new TransactionGroup(
      producerNamed("p0", true),
      "lp.replicator.x",
      async () => undefined,
      async () => {
        renewals++;
        // The destination is away at the first renewal (right after the failure), back at the second.
        if (renewals === 1) throw new Error("connection refused");
        return producerNamed(`p${++producers}`, false);
      },
    );
    const first = group.run(pos(0, 10), [msgs("a")]);
    await first.then(
      () => expect.fail("the commit failed"),
      (err: unknown) => expect(String(err)).to.match(/connection lost/),
    );
    expect(renewals).to.equal(1);
    // The next turn (here settled(), as a resuming partition calls it) runs on a new producer, never on p0.
    await group.settled();
    expect(renewals).to.equal(2);
    expect(log).to.deep.equal(["p0: transaction", "p1: transaction", "p1: commit"]);
  });
});
