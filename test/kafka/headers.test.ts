import { expect } from "chai";
import { createRequire } from "node:module";
import {
  HEADER_LIST,
  headerListOf,
  headerObjectOf,
  setHeaders,
  type HeaderList,
} from "../../kafka/headers.js";
import { encodeProduceRequestBody, type ProduceArgs } from "../../kafka/patches/produce-encoding.js";
import { createRecordDecoder } from "../../kafka/patches/record-decoding.js";

const require = createRequire(import.meta.url);
type Decoded = {
  records: { headers: Record<string, unknown>; [HEADER_LIST]?: HeaderList; value: Buffer | null }[];
};
const Decoder = require("kafkajs/src/protocol/decoder.js") as new (buffer: Buffer) => unknown;
// Loaded after the hooks installed the patches: it binds the patched record decoder.
const decodeBatch = require("kafkajs/src/protocol/recordBatch/v0/decoder.js") as (
  d: unknown,
) => Promise<Decoded>;

/** The record batch of a one-topic ("t"), one-partition request body, decoded by kafkajs's batch decoder. */
async function roundTrip(messages: ProduceArgs["topicData"][number]["partitions"][number]["messages"]) {
  const body = encodeProduceRequestBody({
    acks: -1,
    timeout: 1000,
    topicData: [{ topic: "t", partitions: [{ partition: 0, messages }] }],
  });
  expect(body, "the fast encoder takes the request").to.not.equal(undefined);
  // transactional id (2), acks (2), timeout (4), topics (4), "t" (3), partitions (4), partition (4), size (4)
  return (await decodeBatch(new Decoder(body!.subarray(27)))).records;
}

const b = (s: string) => Buffer.from(s);

describe("kafka: record headers in order, null values (encoder and decoder patches)", () => {
  it("headerObjectOf folds repeated names in order and takes toString/__proto__ as plain names", () => {
    const obj = headerObjectOf([
      ["a", b("1")],
      ["toString", b("t")],
      ["__proto__", b("p")],
      ["b", null],
      ["a", b("3")],
    ]);
    expect(Object.keys(obj)).to.deep.equal(["a", "toString", "__proto__", "b"]);
    expect(obj.a).to.deep.equal([b("1"), b("3")]);
    expect(obj.toString).to.deep.equal(b("t"));
    expect(Object.getOwnPropertyDescriptor(obj, "__proto__")?.value).to.deep.equal(b("p"));
    expect(obj.b).to.equal(null);
  });

  it("setHeaders replaces a name's first entry in place, drops its repeats, appends new names", () => {
    const out = setHeaders(
      [
        ["x", b("1")],
        ["lp.path", b("dc1")],
        ["y", null],
        ["lp.path", b("dup")],
      ],
      [
        ["lp.path", "dc1,dc2"],
        ["lp.origin.dc", "dc1"],
      ],
    );
    expect(out).to.deep.equal([
      ["x", b("1")],
      ["lp.path", "dc1,dc2"],
      ["y", null],
      ["lp.origin.dc", "dc1"],
    ]);
  });

  it("headerListOf prefers the ordered list, else the object's entries", () => {
    const list: HeaderList = [["a", b("1")]];
    expect(headerListOf({ headers: { z: "9" }, [HEADER_LIST]: list })).to.equal(list);
    expect(headerListOf({ headers: { z: "9", w: [b("1"), null] } })).to.deep.equal([
      ["z", b("9")],
      ["w", b("1")],
      ["w", null],
    ]);
  });

  it("a message's ordered list is written in order, null values included, and decoded back in order", async () => {
    const list: HeaderList = [
      ["a", b("1")],
      ["b", b("2")],
      ["a", b("3")],
      ["n", null],
      ["e", b("")],
      ["bin", Buffer.from([0, 255, 128, 10])],
    ];
    const [record] = await roundTrip([{ value: b("v"), headers: { ignored: "x" }, [HEADER_LIST]: list }]);
    expect(record![HEADER_LIST]).to.deep.equal(list);
    expect(record!.headers).to.deep.equal({
      a: [b("1"), b("3")],
      b: b("2"),
      n: null,
      e: b(""),
      bin: list[5]![1],
    });
  });

  it("a null header value in kafkajs's object form is written as Kafka's null (kafkajs's encoder throws)", async () => {
    const [record] = await roundTrip([{ value: null, headers: { h: null, k: [b("1"), null] } }]);
    expect(record![HEADER_LIST]).to.deep.equal([
      ["h", null],
      ["k", b("1")],
      ["k", null],
    ]);
    expect(record!.value).to.equal(null);
  });

  it("5,000 headers on one record round-trip in order", async () => {
    const list: HeaderList = Array.from({ length: 5000 }, (_, i) => [`h${i % 7}`, b(String(i))] as const);
    const [record] = await roundTrip([{ value: b("v"), [HEADER_LIST]: list }]);
    expect(record![HEADER_LIST]).to.deep.equal(list);
    expect((record!.headers.h0 as Buffer[]).length).to.equal(715);
  });

  it("the decoder keeps kafkajs's other fields (LOG_APPEND_TIME takes the batch's max timestamp)", () => {
    const Long = require("kafkajs/src/utils/long.js") as Parameters<typeof createRecordDecoder>[0];
    const decode = createRecordDecoder(Long);
    const fields = [0, { toString: () => "5" }, 2, null, b("v"), []] as unknown[];
    const reader = {
      readInt8: () => fields[0],
      readVarLong: () => fields[1],
      readVarInt: () => fields[2],
      readVarIntBytes: (() => {
        let n = 0;
        return () => [null, b("v")][n++] ?? null;
      })(),
      readVarIntString: () => "",
      readVarIntArray: () => [],
    } as unknown as Parameters<ReturnType<typeof createRecordDecoder>>[0];
    const out = decode(reader, {
      firstOffset: "10",
      firstTimestamp: "1000",
      timestampType: 1,
      maxTimestamp: "2000",
    });
    expect(out).to.include({ offset: "12", timestamp: "2000", key: null, isControlRecord: false });
    expect(out.value).to.deep.equal(b("v"));
  });
});
