/** kafka/utf8.ts: the JavaScript fast path gives Node's UTF-8 lengths and bytes. Pure, no I/O. */
import { expect } from "chai";
import { utf8Length, writeUtf8 } from "../../kafka/utf8.js";

const samples = [
  "",
  "lp.origin.dc",
  "0",
  "a".repeat(64),
  "a".repeat(65),
  `${"a".repeat(63)}é`,
  "clé-ü",
  "订单-42",
  "😀",
  "\ud800", // a lone surrogate: Node writes U+FFFD (3 bytes)
  "x\u007fy",
  "x\u0080y",
];

describe("replicator utf8", () => {
  it("measures and writes every sample exactly as Buffer does", () => {
    for (const s of samples) {
      const length = utf8Length(s);
      expect(length, JSON.stringify(s)).to.equal(Buffer.byteLength(s, "utf8"));
      const buf = Buffer.alloc(length + 4, 0xee);
      const end = writeUtf8(buf, 2, s, length);
      expect(end).to.equal(2 + length);
      expect(buf.subarray(2, end).equals(Buffer.from(s, "utf8")), JSON.stringify(s)).to.equal(true);
      expect([buf[0], buf[1], buf[end], buf[end + 1]]).to.deep.equal([0xee, 0xee, 0xee, 0xee]);
    }
  });
});
