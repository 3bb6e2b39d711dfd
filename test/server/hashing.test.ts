import { expect } from "chai";
import { getAddress, hexlify, isAddress, keccak256, randomBytes, toUtf8Bytes } from "ethers";
import { isHexAddress, keccakHex } from "../../server/keccak.js";
import { canonicalJson, requestRefOf } from "../../server/ids.js";

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

describe("fast keccak and address checks (hash-wasm) against ethers", () => {
  it("keccakHex equals ethers' keccak256 for strings and bytes of any length", () => {
    for (const size of [0, 1, 31, 32, 135, 136, 137, 1000, 22_000]) {
      const bytes = randomBytes(size);
      expect(keccakHex(bytes)).to.equal(keccak256(bytes));
    }
    expect(keccakHex(Buffer.from("license:x", "utf8"))).to.equal(keccak256(toUtf8Bytes("license:x")));
  });

  it("isHexAddress agrees with ethers' isAddress on checksummed, lower, upper, broken and other forms", () => {
    for (let i = 0; i < 200; i++) {
      const address = getAddress(hexlify(randomBytes(20)));
      const lower = address.toLowerCase();
      const upper = `0x${address.slice(2).toUpperCase()}`;
      // flip the case of one letter: a broken checksum (unless the address has no letters)
      const at = address.slice(2).search(/[a-fA-F]/);
      const broken =
        at < 0
          ? address
          : `0x${address.slice(2, 2 + at)}${address[2 + at] === address[2 + at]!.toUpperCase() ? address[2 + at]!.toLowerCase() : address[2 + at]!.toUpperCase()}${address.slice(3 + at)}`;
      for (const value of [address, lower, upper, broken, address.slice(2), `${address}0`, "0x12"]) {
        expect(isHexAddress(value, isAddress), value).to.equal(isAddress(value));
      }
    }
  });
});
