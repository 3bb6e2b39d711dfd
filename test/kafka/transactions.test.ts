import { expect } from "chai";
import { createRequire } from "node:module";
import kafkajs from "kafkajs";
import { getKafka, randomTopic } from "../fixtures/infra.js";
import {
  CoordinatorCache,
  cachedFindGroupCoordinator,
  installTransactionFixes,
  invalidateNode,
  invalidatesCoordinator,
  invalidatingOnFailure,
  retryingConcurrentTransactions,
} from "../../kafka/patches/transactions.js";

const require = createRequire(import.meta.url);
const kafkajsErrors = require("kafkajs/src/errors.js") as {
  KafkaJSProtocolError: new (e: { type: string; code: number; retriable: boolean; message: string }) => Error;
  KafkaJSConnectionError: new (message: string) => Error;
};
/** What `promise` rejects with (undefined if it resolves). */
const rejectionOf = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );
const protocolError = (type: string, code: number): Error =>
  new kafkajsErrors.KafkaJSProtocolError({ type, code, retriable: true, message: type });

describe("kafkajs transaction fixes", () => {
  describe("retryingConcurrentTransactions", () => {
    it("retries a request answered CONCURRENT_TRANSACTIONS after the given waits, then answers", async () => {
      const waits: number[] = [];
      let calls = 0;
      const addPartitions = retryingConcurrentTransactions(
        function (this: { nodeId: number }, arg: string) {
          calls++;
          return calls <= 3
            ? Promise.reject(protocolError("CONCURRENT_TRANSACTIONS", 51))
            : Promise.resolve(`${arg}@${this.nodeId}`);
        },
        [1, 2, 4, 8],
        async (ms) => {
          waits.push(ms);
        },
      );
      expect(await addPartitions.call({ nodeId: 7 }, "topics")).to.equal("topics@7");
      expect(calls).to.equal(4);
      expect(waits).to.deep.equal([1, 2, 4]);
    });

    it("throws the last CONCURRENT_TRANSACTIONS once the waits are spent, and other errors at once", async () => {
      // A request that always fails with `type`: the error thrown and the number of attempts.
      async function outcome(type: string, code: number): Promise<{ type?: string; calls: number }> {
        let calls = 0;
        const request = retryingConcurrentTransactions(
          () => {
            calls++;
            return Promise.reject(protocolError(type, code));
          },
          [1, 1],
          async () => undefined,
        );
        const error = (await rejectionOf(request())) as { type?: string } | undefined;
        return { type: error?.type, calls };
      }
      expect(await outcome("CONCURRENT_TRANSACTIONS", 51)).to.deep.equal({
        type: "CONCURRENT_TRANSACTIONS",
        calls: 3,
      });
      expect(await outcome("INVALID_PRODUCER_EPOCH", 47)).to.deep.equal({
        type: "INVALID_PRODUCER_EPOCH",
        calls: 1,
      });
    });
  });

  describe("invalidatesCoordinator", () => {
    it("drops the coordinator on coordinator errors (codes 14-16) and on errors without a protocol code", () => {
      expect(invalidatesCoordinator(protocolError("GROUP_LOAD_IN_PROGRESS", 14))).to.equal(true);
      expect(invalidatesCoordinator(protocolError("GROUP_COORDINATOR_NOT_AVAILABLE", 15))).to.equal(true);
      expect(invalidatesCoordinator(protocolError("NOT_COORDINATOR_FOR_GROUP", 16))).to.equal(true);
      expect(invalidatesCoordinator(new kafkajsErrors.KafkaJSConnectionError("Connection closed"))).to.equal(
        true,
      );
      expect(invalidatesCoordinator(new Error("timeout"))).to.equal(true);
    });

    it("keeps it on other protocol errors, such as CONCURRENT_TRANSACTIONS between transactions", () => {
      expect(invalidatesCoordinator(protocolError("CONCURRENT_TRANSACTIONS", 51))).to.equal(false);
      expect(invalidatesCoordinator(protocolError("REBALANCE_IN_PROGRESS", 27))).to.equal(false);
    });
  });

  describe("CoordinatorCache", () => {
    it("answers until the entry's node fails or the entry ages out", () => {
      const generations = new Map<number, number>();
      const cache = new CoordinatorCache(generations, 1000);
      cache.set("1:txn-a", 3, 0);
      cache.set("0:group-b", 3, 0);
      cache.set("0:group-c", 4, 0);
      expect(cache.get("1:txn-a", 500)).to.equal(3);
      invalidateNode(generations, 3);
      expect(cache.get("1:txn-a", 500)).to.equal(undefined);
      expect(cache.get("0:group-b", 500)).to.equal(undefined);
      expect(cache.get("0:group-c", 500)).to.equal(4);
      expect(cache.get("0:group-c", 1001)).to.equal(undefined);
      cache.set("1:txn-a", 3, 2000); // stored after the failure: valid again
      expect(cache.get("1:txn-a", 2001)).to.equal(3);
    });
  });

  describe("patched methods", () => {
    function cluster(nodeIds: number[]) {
      const lookups: string[] = [];
      const known = new Set(nodeIds);
      let coordinator = nodeIds[0]!;
      const c = {
        lookups,
        known,
        moveTo(nodeId: number) {
          coordinator = nodeId;
        },
        findBroker({ nodeId }: { nodeId: number }) {
          return known.has(nodeId)
            ? Promise.resolve({ nodeId })
            : Promise.reject(new Error(`broker ${nodeId} not found`));
        },
        findGroupCoordinator: undefined as unknown as (args: {
          groupId: string;
          coordinatorType?: number;
        }) => Promise<{ nodeId: number }>,
      };
      const original = function (this: typeof c, args: { groupId: string; coordinatorType?: number }) {
        lookups.push(`${args.coordinatorType ?? 0}:${args.groupId}`);
        return Promise.resolve({ nodeId: coordinator });
      };
      return { c, original };
    }

    it("looks a coordinator up once per key, then answers from the cache", async () => {
      const generations = new Map<number, number>();
      const { c, original } = cluster([1, 2]);
      c.findGroupCoordinator = cachedFindGroupCoordinator(original, generations);
      for (let i = 0; i < 5; i++) {
        expect(await c.findGroupCoordinator({ groupId: "txn", coordinatorType: 1 })).to.deep.equal({
          nodeId: 1,
        });
        expect(await c.findGroupCoordinator({ groupId: "grp" })).to.deep.equal({ nodeId: 1 });
      }
      expect(c.lookups).to.deep.equal(["1:txn", "0:grp"]);
    });

    it("after a coordinator error of the cached node, looks up again and follows the move", async () => {
      const generations = new Map<number, number>();
      const { c, original } = cluster([1, 2]);
      c.findGroupCoordinator = cachedFindGroupCoordinator(original, generations);
      const broker = { nodeId: 1 };
      let failWith: Error | undefined;
      const endTxn = invalidatingOnFailure(function (this: { nodeId: number }) {
        return failWith ? Promise.reject(failWith) : Promise.resolve("ok");
      }, generations);

      await c.findGroupCoordinator({ groupId: "txn", coordinatorType: 1 });
      failWith = protocolError("CONCURRENT_TRANSACTIONS", 51);
      await endTxn.call(broker).catch(() => undefined);
      await c.findGroupCoordinator({ groupId: "txn", coordinatorType: 1 });
      expect(c.lookups).to.have.length(1); // not a coordinator error: kept

      c.moveTo(2);
      failWith = protocolError("NOT_COORDINATOR_FOR_GROUP", 16);
      const rejected = await rejectionOf(endTxn.call(broker));
      expect(rejected).to.equal(failWith); // the caller still sees its error
      expect(await c.findGroupCoordinator({ groupId: "txn", coordinatorType: 1 })).to.deep.equal({
        nodeId: 2,
      });
      expect(c.lookups).to.have.length(2);
    });

    it("looks up again when the cached broker left the cluster", async () => {
      const generations = new Map<number, number>();
      const { c, original } = cluster([1, 2]);
      c.findGroupCoordinator = cachedFindGroupCoordinator(original, generations);
      await c.findGroupCoordinator({ groupId: "grp" });
      c.known.delete(1);
      c.moveTo(2);
      expect(await c.findGroupCoordinator({ groupId: "grp" })).to.deep.equal({ nodeId: 2 });
      expect(c.lookups).to.deep.equal(["0:grp", "0:grp"]);
    });
  });

  describe("installTransactionFixes", () => {
    it("patches kafkajs 2.2.4's Cluster and Broker methods once", () => {
      const Cluster = require("kafkajs/src/cluster/index.js") as {
        prototype: { findGroupCoordinator: unknown };
      };
      const Broker = require("kafkajs/src/broker/index.js") as { prototype: { endTxn: unknown } };
      expect(installTransactionFixes({})).to.deep.equal({ active: true });
      const find = Cluster.prototype.findGroupCoordinator;
      const endTxn = Broker.prototype.endTxn;
      expect(installTransactionFixes({})).to.deep.equal({ active: true });
      expect(Cluster.prototype.findGroupCoordinator).to.equal(find); // not wrapped twice
      expect(Broker.prototype.endTxn).to.equal(endTxn);
    });
  });

  describe("against a real broker", () => {
    it("five transactions with offsets: no FindCoordinator nor Metadata request per transaction, all committed", async function () {
      this.timeout(120_000);
      expect(installTransactionFixes({})).to.deep.equal({ active: true });
      const dc = (await getKafka()).clusters[0]!;
      const kafka = new kafkajs.Kafka({
        clientId: "coordinator-cache-test",
        brokers: dc.brokers,
        logLevel: kafkajs.logLevel.NOTHING,
        // The first TxnOffsetCommit may meet a fresh broker still creating __consumer_offsets (this file
        // can be the first to use a group coordinator): kafkajs retries it with the client's retry.
        retry: { retries: 12, initialRetryTime: 300, maxRetryTime: 5000 },
      });
      const topic = randomTopic("coord");
      const admin = kafka.admin();
      await admin.connect();
      const producer = kafka.producer({
        transactionalId: `coord-${topic}`,
        idempotent: true,
        maxInFlightRequests: 1,
        retry: { retries: 30, initialRetryTime: 5, multiplier: 1.3, maxRetryTime: 5000 },
      });
      const apis: string[] = [];
      let firstDone = 0;
      producer.on(producer.events.REQUEST, (e: { payload: { apiName: string } }) => {
        apis.push(e.payload.apiName);
      });
      const consumer = kafka.consumer({ groupId: `coord-read-${topic}`, readUncommitted: false });
      try {
        await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
        await producer.connect();
        for (let i = 0; i < 5; i++) {
          const txn = await producer.transaction();
          await txn.send({ topic, acks: -1, messages: [{ value: `v${i}` }] });
          await txn.sendOffsets({
            consumerGroupId: `coord-group-${topic}`,
            topics: [{ topic, partitions: [{ partition: 0, offset: String(i + 1) }] }],
          });
          await txn.commit();
          if (i === 0) firstDone = apis.length;
        }
        const count = (name: string, from = 0) => apis.slice(from).filter((a) => a === name).length;
        expect(count("Produce")).to.equal(5);
        expect(count("EndTxn")).to.equal(5);
        expect(count("TxnOffsetCommit")).to.equal(5);
        // After the first transaction (which looks both coordinators up, more than once while a fresh broker
        // creates __transaction_state): no FindCoordinator (kafkajs calls it GroupCoordinator; on its own it
        // sends 4 per transaction) and no Metadata (kafkajs refreshed it after each CONCURRENT_TRANSACTIONS
        // answer to AddPartitionsToTxn, nearly every transaction).
        expect(count("GroupCoordinator", firstDone)).to.equal(0);
        expect(count("Metadata", firstDone)).to.equal(0);
        const offsets = await admin.fetchOffsets({ groupId: `coord-group-${topic}`, topics: [topic] });
        expect(offsets[0]!.partitions[0]!.offset).to.equal("5");
        const seen: string[] = [];
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          eachMessage: async ({ message }) => {
            seen.push(message.value!.toString());
          },
        });
        const deadline = Date.now() + 30_000;
        while (seen.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(seen).to.deep.equal(["v0", "v1", "v2", "v3", "v4"]);
      } finally {
        await consumer.disconnect();
        await producer.disconnect();
        await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
        await admin.disconnect();
      }
    });
  });
});
