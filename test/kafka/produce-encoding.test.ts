import { expect } from "chai";
import { createRequire } from "node:module";
import {
  encodeProduceRequestBody,
  fastProduceRequest,
  kafkajsProduceRequest,
  type EncoderConstructor,
  type ProduceArgs,
  type ProduceMessage,
} from "../../kafka/patches/produce-encoding.js";
import { prng } from "../support/prng.js";

const require = createRequire(import.meta.url);
const Long = require("kafkajs/src/utils/long.js") as {
  fromValue(v: unknown): unknown;
  fromInt(v: number): unknown;
};
const Encoder = require("kafkajs/src/protocol/encoder.js") as EncoderConstructor;

const NOW = 1_763_700_000_123;

function randomRequest(rand: () => number): ProduceArgs {
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  // Around the encoder's short-ASCII fast path (64 characters) and past it, ASCII and not.
  const text = () =>
    pick([
      "",
      "k",
      "clé-ü",
      "订单-42",
      "x".repeat(int(300)),
      "y".repeat(64),
      "z".repeat(65),
      `${"a".repeat(63)}é`,
    ]);
  const field = (): Buffer | string | null =>
    pick([() => null, () => text(), () => bytes(pick([0, 1, 127, 128, 1024, 20_000]))])();
  const message = (): ProduceMessage => {
    const m: ProduceMessage = { value: field() };
    const key = pick([undefined, null, "key", bytes(16), "ключ"]);
    if (key !== undefined) m.key = key;
    if (rand() < 0.7) {
      const headers: NonNullable<ProduceMessage["headers"]> = {};
      for (let h = int(6); h > 0; h--) {
        headers[pick(["lp.origin.dc", "lp.path", "trace-id", "ü", `h${int(1000)}`])] = pick([
          () => text(),
          () => bytes(int(40)),
          () => [text(), bytes(3)],
          () => [],
        ])();
      }
      m.headers = headers;
    }
    const ts = pick([
      undefined,
      String(NOW - int(100_000)),
      NOW + int(1000),
      String(999_999_999 + int(10)), // fewer digits: kafkajs sorts timestamps as strings
      "0",
    ]);
    if (ts !== undefined) m.timestamp = ts;
    return m;
  };
  const topics = Array.from({ length: 1 + int(2) }, (_, t) => ({
    topic: pick([`orders-${t}`, `dc1.événements-${t}`]),
    partitions: Array.from({ length: 1 + int(3) }, (_, p) => ({
      partition: p * 3 + int(3),
      ...(rand() < 0.5 ? { firstSequence: int(2 ** 31 - 1) } : {}),
      messages: Array.from({ length: pick([0, 1, 2, 17, 200]) }, message),
    })),
  }));
  const transactional = rand() < 0.3;
  return {
    acks: pick([-1, 1, 0]),
    timeout: pick([30_000, 5_000]),
    ...(transactional ? { transactionalId: pick(["lp.replicator.a.pipeline", "tx-ü"]) } : {}),
    ...(rand() < 0.5 ? { producerId: pick([Long.fromInt(-1), Long.fromValue("9007199254740993"), 42]) } : {}),
    ...(rand() < 0.5 ? { producerEpoch: int(32_000) } : {}),
    topicData: topics,
  };
}

async function encodeWith(
  factory: (a: ProduceArgs) => { encode(): Promise<{ buffer: Buffer }> },
  args: ProduceArgs,
) {
  return (await factory(args).encode()).buffer;
}

describe("produce encoding (the replicator's fast kafkajs produce encoder)", () => {
  const original = kafkajsProduceRequest();
  const fast = fastProduceRequest(original, Encoder);
  const realNow = Date.now;
  beforeEach(() => {
    Date.now = () => NOW;
  });
  afterEach(() => {
    Date.now = realNow;
  });

  it("writes exactly kafkajs's bytes for 200 randomised requests", async function () {
    this.timeout(60_000);
    let fastPathUsed = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const args = randomRequest(prng(seed));
      if (encodeProduceRequestBody(args) !== undefined) fastPathUsed++;
      const want = await encodeWith(original, args);
      const got = await encodeWith(fast, args);
      expect(got.equals(want), `seed ${seed}: ${got.length} vs ${want.length} bytes`).to.equal(true);
    }
    // The comparison above must exercise the fast path, not only the fallback.
    expect(fastPathUsed).to.equal(200);
  });

  it("keeps the request's protocol fields (api key, version, acks-dependent response)", () => {
    const args: ProduceArgs = {
      acks: 0,
      timeout: 1000,
      topicData: [{ topic: "t", partitions: [{ partition: 0, messages: [{ value: "v" }] }] }],
    };
    const a = original(args);
    const b = fast(args);
    expect([b.apiKey, b.apiVersion, b.apiName]).to.deep.equal([a.apiKey, a.apiVersion, a.apiName]);
    expect(b.expectResponse()).to.equal(false);
    expect(fast({ ...args, acks: -1 }).expectResponse()).to.equal(true);
  });

  it("leaves compressed batches to kafkajs (same bytes after decompression framing)", async () => {
    const args: ProduceArgs = {
      acks: -1,
      timeout: 1000,
      compression: 1, // gzip
      topicData: [{ topic: "t", partitions: [{ partition: 0, messages: [{ value: "v".repeat(100) }] }] }],
    };
    expect(encodeProduceRequestBody(args)).to.equal(undefined);
    // gzip output is deterministic for the same input and level, so the bytes still match.
    expect((await encodeWith(fast, args)).equals(await encodeWith(original, args))).to.equal(true);
  });

  for (const bad of [undefined]) {
    it(`fails where kafkajs fails (header value ${String(bad)})`, async () => {
      const args = {
        acks: -1,
        timeout: 1000,
        topicData: [
          { topic: "t", partitions: [{ partition: 0, messages: [{ value: "v", headers: { h: bad } }] }] },
        ],
      } as ProduceArgs;
      expect(encodeProduceRequestBody(args)).to.equal(undefined);
      const failure = async (f: typeof original) =>
        encodeWith(f, args).then(
          () => "no error",
          (err: Error) => err.constructor.name,
        );
      expect(await failure(fast)).to.equal(await failure(original));
      expect(await failure(original)).to.not.equal("no error");
    });
  }
});
