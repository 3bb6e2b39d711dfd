import { expect } from "chai";
import { randomBytes } from "node:crypto";
import {
  CHUNK_HEADERS,
  Reassembler,
  recordSize,
  splitRecord,
  type RecordLike,
} from "../../replicator/chunking.js";
import { ChunkError } from "../../replicator/errors.js";

describe("chunking", () => {
  it("leaves a record that fits unchanged", () => {
    const r: RecordLike = { key: Buffer.from("k"), value: Buffer.from("small"), headers: { a: "b" } };
    expect(splitRecord(r, 1000)).to.deep.equal([r]);
    const tomb: RecordLike = { key: Buffer.from("k"), value: null };
    expect(splitRecord(tomb, 10)).to.deep.equal([tomb]);
  });

  it("splits a large record into chunks within the limit and reassembles it", () => {
    const value = randomBytes(10_000);
    const r: RecordLike = {
      key: Buffer.from("key"),
      value,
      headers: { h: "v" },
      timestamp: "1700000000000",
      partition: 3,
    };
    const chunks = splitRecord(r, 1500, "id-1");
    expect(chunks.length).to.be.greaterThan(7);
    chunks.forEach((c, i) => {
      expect(recordSize(c)).to.be.at.most(1500);
      expect(c.headers?.[CHUNK_HEADERS.id]).to.equal("id-1");
      expect(c.headers?.[CHUNK_HEADERS.index]).to.equal(String(i));
      expect(c.headers?.[CHUNK_HEADERS.count]).to.equal(String(chunks.length));
      expect(c.key).to.deep.equal(r.key);
      expect(c.partition).to.equal(3);
      expect(c.timestamp).to.equal("1700000000000");
    });
    const re = new Reassembler();
    // Interleaved with an ordinary record and with a re-delivered chunk.
    expect(re.push({ key: null, value: Buffer.from("plain") })?.value?.toString()).to.equal("plain");
    let whole: RecordLike | undefined;
    for (const [i, c] of chunks.entries()) {
      whole = re.push(c);
      if (i === 0) expect(re.push(c)).to.equal(undefined);
      if (i < chunks.length - 1) expect(whole).to.equal(undefined);
    }
    expect(whole?.value?.equals(value)).to.equal(true);
    expect(whole?.headers).to.deep.equal({ h: "v" });
    expect(whole?.key?.toString()).to.equal("key");
    expect(re.incomplete).to.equal(0);
  });

  it("reassembles chunks that arrive out of order and reports bad chunks", () => {
    const value = randomBytes(3000);
    const chunks = splitRecord({ key: null, value }, 1000, "x");
    const re = new Reassembler();
    const out = [...chunks].reverse().map((c) => re.push(c));
    expect(out.at(-1)?.value?.equals(value)).to.equal(true);
    expect(() =>
      re.push({ key: null, value: Buffer.from("a"), headers: { [CHUNK_HEADERS.id]: "y" } }),
    ).to.throw(ChunkError);
    expect(() =>
      re.push({
        key: null,
        value: Buffer.from("a"),
        headers: { [CHUNK_HEADERS.id]: "z", [CHUNK_HEADERS.index]: "3", [CHUNK_HEADERS.count]: "2" },
      }),
    ).to.throw(ChunkError, /bad index/);
  });

  it("refuses when key and headers alone exceed the limit", () => {
    expect(() => splitRecord({ key: randomBytes(500), value: randomBytes(5000) }, 400)).to.throw(ChunkError);
  });
});
