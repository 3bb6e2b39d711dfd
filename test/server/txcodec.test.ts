import { expect } from "chai";
import { Transaction, Wallet, getAddress, hexlify, randomBytes } from "ethers";
import { LICENSE_INTERFACE } from "../../server/chain.js";
import { encodeIssueBatch, rlpEncode, signTx, uintBytes, type BatchItem } from "../../server/txcodec.js";

const item = (i: number): BatchItem => ({
  licensee: i % 2 ? getAddress(hexlify(randomBytes(20))) : hexlify(randomBytes(20)),
  productId: i + 1,
  expiresAt: i % 3 === 0 ? 0 : 1_900_000_000 + i,
  seats: (i % 5) + 1,
  termsHash: hexlify(randomBytes(32)),
  requestRef: hexlify(randomBytes(32)),
});

describe("transaction codec (pure, checked against ethers)", () => {
  it("encodes issueBatch exactly as ethers' encodeFunctionData", () => {
    for (const n of [1, 2, 7, 100]) {
      const items = Array.from({ length: n }, (_, i) => item(i));
      const ethers = LICENSE_INTERFACE.encodeFunctionData("issueBatch", [
        items.map((l) => l.licensee),
        items.map((l) => ({ ...l, locked: false })),
      ]);
      expect(`0x${encodeIssueBatch(items).toString("hex")}`).to.equal(ethers);
    }
  });

  it("rejects malformed fields instead of encoding garbage", () => {
    expect(() => encodeIssueBatch([{ ...item(0), termsHash: "0x1234" }])).to.throw(/termsHash/);
    expect(() => encodeIssueBatch([{ ...item(0), licensee: "0xzz" }])).to.throw(/licensee/);
    expect(() => encodeIssueBatch([{ ...item(0), seats: 2 ** 32 }])).to.throw(/seats/);
  });

  it("RLP-encodes integers, short and long strings and lists", () => {
    expect(uintBytes(0n).length).to.equal(0);
    expect(rlpEncode(uintBytes(0n)).toString("hex")).to.equal("80");
    expect(rlpEncode(Buffer.from([0x7f])).toString("hex")).to.equal("7f");
    expect(rlpEncode(Buffer.from("dog")).toString("hex")).to.equal("83646f67");
    expect(rlpEncode([Buffer.from("cat"), Buffer.from("dog")]).toString("hex")).to.equal(
      "c88363617483646f67",
    );
    const long = Buffer.alloc(1024, 1);
    expect(rlpEncode(long).subarray(0, 3).toString("hex")).to.equal("b90400");
  });

  it("signs type-2 and legacy transactions that ethers parses back, with the signer's address and hash", async () => {
    const wallet = Wallet.createRandom();
    const data = encodeIssueBatch(Array.from({ length: 100 }, (_, i) => item(i)));
    const to = getAddress(hexlify(randomBytes(20)));
    for (const fee of [
      { maxFeePerGas: 3_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n },
      { maxFeePerGas: 1n, maxPriorityFeePerGas: 0n },
      { gasPrice: 2_000_000_000n },
    ]) {
      for (const nonce of [0, 1, 127, 128, 70_000]) {
        const tx = { chainId: 31337, nonce, gasLimit: 14_500_000n, to, data, fee };
        const { rawTx, txHash } = signTx(tx, wallet.signingKey);
        const parsed = Transaction.from(rawTx);
        expect(parsed.from).to.equal(wallet.address);
        expect(parsed.hash).to.equal(txHash);
        expect(parsed.nonce).to.equal(nonce);
        expect(parsed.to).to.equal(to);
        expect(parsed.data).to.equal(`0x${data.toString("hex")}`);
        expect(parsed.chainId).to.equal(31337n);
        expect(parsed.gasLimit).to.equal(14_500_000n);
        // ethers signs the same fields to the same bytes (deterministic RFC 6979 signatures)
        const expected = await wallet.signTransaction({
          to,
          data: parsed.data,
          nonce,
          gasLimit: 14_500_000n,
          chainId: 31337,
          ...("gasPrice" in fee ? { type: 0, gasPrice: fee.gasPrice } : { type: 2, ...fee }),
        });
        expect(rawTx).to.equal(expected);
      }
    }
  });
});
