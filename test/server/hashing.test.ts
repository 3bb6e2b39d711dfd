import { expect } from "chai";
import { keccak256, toUtf8Bytes } from "ethers";
import { canonicalJson, requestRefOf } from "../../server/service.js";

describe("license hashes", () => {
  it("request refs keep the value of keccak256(toUtf8Bytes(`license:<id>`)) (stored rows, tokenOfRequest)", () => {
    for (const id of ["0b7f6a52-1c1e-4a53-9d0e-3f4f2d6c8a11", "x", ""]) {
      expect(requestRefOf(id)).to.equal(keccak256(toUtf8Bytes(`license:${id}`)));
    }
  });

  it("UTF-8 bytes of canonical JSON equal ethers' toUtf8Bytes, also for non-ASCII and lone surrogates", () => {
    const values = [
      { id: "a", productId: 1, licensee: "0xabc", expiresAt: 0, seats: 1 },
      { licensee: "Zoë — 日本 😀", seats: 2 },
      { licensee: "lone \ud800 and \udc00 surrogates" },
    ];
    for (const value of values) {
      const json = canonicalJson(value);
      expect(keccak256(Buffer.from(json, "utf8"))).to.equal(keccak256(toUtf8Bytes(json)));
    }
  });
});
