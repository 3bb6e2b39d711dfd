import { expect } from "chai";
import { network } from "hardhat";
import {
  ADMIN_DELAY,
  BASE_URI,
  ZERO_ADDRESS,
  ZERO_HASH,
  deployLicenseToken,
  expectedTokenURI,
  mined,
  parsedLogs,
  terms,
  type LicenseRecord,
} from "./helpers.js";

const { ethers, networkHelpers } = await network.create();

async function deployed() {
  return deployLicenseToken(ethers);
}

describe("LicenseToken: deployment and issue", function () {
  describe("constructor", function () {
    it("grants the admin and issuer roles and sets name, symbol and base URI", async function () {
      const { token, admin, issuer, ISSUER_ROLE, DEFAULT_ADMIN_ROLE } =
        await networkHelpers.loadFixture(deployed);
      expect(await token.hasRole(DEFAULT_ADMIN_ROLE, admin.address)).to.equal(true);
      expect(await token.hasRole(ISSUER_ROLE, issuer.address)).to.equal(true);
      expect(await token.hasRole(ISSUER_ROLE, admin.address)).to.equal(false);
      expect(await token.hasRole(DEFAULT_ADMIN_ROLE, issuer.address)).to.equal(false);
      expect(ISSUER_ROLE).to.equal(ethers.id("ISSUER_ROLE"));
      expect(await token.getRoleAdmin(ISSUER_ROLE)).to.equal(DEFAULT_ADMIN_ROLE);
      expect(await token.name()).to.equal("Software License");
      expect(await token.symbol()).to.equal("LICENSE");
      expect(await token.nextTokenId()).to.equal(1n);
      // AccessControlDefaultAdminRules: one default admin (also the ERC-5313 owner), the given delay.
      expect(await token.defaultAdmin()).to.equal(admin.address);
      expect(await token.owner()).to.equal(admin.address);
      expect(await token.defaultAdminDelay()).to.equal(ADMIN_DELAY);
    });

    it("grants no issuer role when the issuer is the zero address", async function () {
      const [admin] = await ethers.getSigners();
      const token = await ethers.deployContract("LicenseToken", [admin!.address, ZERO_ADDRESS, "", 0n]);
      const deployTx = token.deploymentTransaction();
      const receipt = await deployTx!.wait();
      const granted = parsedLogs(token, receipt).filter((log) => log.name === "RoleGranted");
      expect(granted).to.have.length(1);
      expect(granted[0]!.args[1]).to.equal(admin!.address);
    });

    it("reverts with AccessControlInvalidDefaultAdmin for a zero admin", async function () {
      const [, issuer] = await ethers.getSigners();
      const factory = await ethers.getContractFactory("LicenseToken");
      await expect(factory.deploy(ZERO_ADDRESS, issuer!.address, "", ADMIN_DELAY))
        .to.be.revertedWithCustomError(factory, "AccessControlInvalidDefaultAdmin")
        .withArgs(ZERO_ADDRESS);
    });
  });

  describe("issue", function () {
    it("mints token 1 to the licensee and stores the whole record", async function () {
      const { token, issuer, alice } = await networkHelpers.loadFixture(deployed);
      const t = terms(ethers, { productId: 42n, seats: 10n, expiresAt: 0n });
      const tokenId = await token.connect(issuer).issue.staticCall(alice.address, t);
      expect(tokenId).to.equal(1n);
      const receipt = await mined(token.connect(issuer).issue(alice.address, t));
      const block = await ethers.provider.getBlock(receipt.blockNumber);

      expect(await token.ownerOf(1n)).to.equal(alice.address);
      expect(await token.balanceOf(alice.address)).to.equal(1n);
      const record = (await token.license(1n)) as LicenseRecord;
      expect(record.productId).to.equal(42n);
      expect(record.issuedAt).to.equal(BigInt(block!.timestamp));
      expect(record.expiresAt).to.equal(0n);
      expect(record.seats).to.equal(10n);
      expect(record.locked).to.equal(false);
      expect(record.revoked).to.equal(false);
      expect(record.termsHash).to.equal(t.termsHash);
      expect(await token.isValid(1n)).to.equal(true);
      expect(await token.nextTokenId()).to.equal(2n);
      const { chainId } = await ethers.provider.getNetwork();
      expect(await token.tokenURI(1n)).to.equal(
        expectedTokenURI(BASE_URI, chainId, token.target as string, 1n),
      );
    });

    it("emits Transfer, LicenseIssued, Unlocked (ERC-5192) and SubscriptionUpdate (ERC-5643) for an expiring transferable license", async function () {
      const { token, issuer, alice } = await networkHelpers.loadFixture(deployed);
      const ref = ethers.id("request-1");
      const t = terms(ethers, { productId: 3n, expiresAt: 4_000_000_000n, requestRef: ref });
      const receipt = await mined(token.connect(issuer).issue(alice.address, t));
      expect(parsedLogs(token, receipt)).to.deep.equal([
        { name: "Transfer", args: [ZERO_ADDRESS, alice.address, 1n] },
        { name: "LicenseIssued", args: [1n, alice.address, ref, 3n, 4_000_000_000n] },
        { name: "Unlocked", args: [1n] },
        { name: "SubscriptionUpdate", args: [1n, 4_000_000_000n] },
      ]);
    });

    it("emits no SubscriptionUpdate for a perpetual license (it has no subscription)", async function () {
      const { token, issuer, alice } = await networkHelpers.loadFixture(deployed);
      const receipt = await mined(token.connect(issuer).issue(alice.address, terms(ethers)));
      expect(parsedLogs(token, receipt).map((l) => l.name)).to.deep.equal([
        "Transfer",
        "LicenseIssued",
        "Unlocked",
      ]);
      expect(await token.expiresAt(1n)).to.equal(0n);
    });

    it("emits Locked (ERC-5192), not Unlocked, when a license is issued locked", async function () {
      const { token, issuer, alice } = await networkHelpers.loadFixture(deployed);
      const receipt = await mined(
        token
          .connect(issuer)
          .issue(alice.address, terms(ethers, { locked: true, expiresAt: 4_000_000_000n })),
      );
      expect(parsedLogs(token, receipt)).to.deep.equal([
        { name: "Transfer", args: [ZERO_ADDRESS, alice.address, 1n] },
        { name: "LicenseIssued", args: [1n, alice.address, ZERO_HASH, 7n, 4_000_000_000n] },
        { name: "Locked", args: [1n] },
        { name: "SubscriptionUpdate", args: [1n, 4_000_000_000n] },
      ]);
      expect(await token.locked(1n)).to.equal(true);
      expect(((await token.license(1n)) as LicenseRecord).locked).to.equal(true);
    });

    it("issues sequential token ids", async function () {
      const { token, issuer, alice, bob } = await networkHelpers.loadFixture(deployed);
      await mined(token.connect(issuer).issue(alice.address, terms(ethers)));
      await mined(token.connect(issuer).issue(bob.address, terms(ethers)));
      expect(await token.ownerOf(1n)).to.equal(alice.address);
      expect(await token.ownerOf(2n)).to.equal(bob.address);
      expect(await token.nextTokenId()).to.equal(3n);
    });

    it("records the request reference and rejects a second issue with it", async function () {
      const { token, issuer, alice, bob } = await networkHelpers.loadFixture(deployed);
      const ref = ethers.id("order-17");
      expect(await token.tokenOfRequest(ref)).to.equal(0n);
      await mined(token.connect(issuer).issue(alice.address, terms(ethers, { requestRef: ref })));
      expect(await token.tokenOfRequest(ref)).to.equal(1n);
      await expect(token.connect(issuer).issue(bob.address, terms(ethers, { requestRef: ref })))
        .to.be.revertedWithCustomError(token, "LicenseDuplicateRequest")
        .withArgs(ref, 1n);
      expect(await token.nextTokenId()).to.equal(2n);
    });

    it("allows any number of licenses without a request reference", async function () {
      const { token, issuer, alice } = await networkHelpers.loadFixture(deployed);
      await mined(token.connect(issuer).issue(alice.address, terms(ethers)));
      await mined(token.connect(issuer).issue(alice.address, terms(ethers)));
      expect(await token.balanceOf(alice.address)).to.equal(2n);
      expect(await token.tokenOfRequest(ZERO_HASH)).to.equal(0n);
    });

    it("reverts with ERC721InvalidReceiver for the zero address", async function () {
      const { token, issuer } = await networkHelpers.loadFixture(deployed);
      await expect(token.connect(issuer).issue(ZERO_ADDRESS, terms(ethers)))
        .to.be.revertedWithCustomError(token, "ERC721InvalidReceiver")
        .withArgs(ZERO_ADDRESS);
    });

    it("reverts with LicenseEmptyTermsHash for a zero terms hash", async function () {
      const { token, issuer, alice } = await networkHelpers.loadFixture(deployed);
      await expect(token.connect(issuer).issue(alice.address, terms(ethers, { termsHash: ZERO_HASH })))
        .to.be.revertedWithCustomError(token, "LicenseEmptyTermsHash")
        .withArgs(1n);
    });

    it("reverts with LicenseInvalidExpiry for an expiry at or before the block time", async function () {
      const { token, issuer, alice } = await networkHelpers.loadFixture(deployed);
      const next = BigInt(await networkHelpers.time.latest()) + 100n;
      await networkHelpers.time.setNextBlockTimestamp(next);
      await expect(token.connect(issuer).issue(alice.address, terms(ethers, { expiresAt: next })))
        .to.be.revertedWithCustomError(token, "LicenseInvalidExpiry")
        .withArgs(1n, next, next);
      await networkHelpers.time.setNextBlockTimestamp(next + 1n);
      await expect(token.connect(issuer).issue(alice.address, terms(ethers, { expiresAt: next - 50n })))
        .to.be.revertedWithCustomError(token, "LicenseInvalidExpiry")
        .withArgs(1n, next - 50n, next + 1n);
    });

    it("accepts an expiry one second after the block time", async function () {
      const { token, issuer, alice } = await networkHelpers.loadFixture(deployed);
      const next = BigInt(await networkHelpers.time.latest()) + 10n;
      await networkHelpers.time.setNextBlockTimestamp(next);
      await mined(token.connect(issuer).issue(alice.address, terms(ethers, { expiresAt: next + 1n })));
      expect(await token.expiresAt(1n)).to.equal(next + 1n);
      expect(await token.isValid(1n)).to.equal(true);
    });
  });

  describe("issueBatch", function () {
    it("issues one license per licensee with sequential ids and returns the first id", async function () {
      const { token, issuer, alice, bob, carol } = await networkHelpers.loadFixture(deployed);
      await mined(token.connect(issuer).issue(carol.address, terms(ethers)));
      const licensees = [alice.address, bob.address, carol.address];
      const batch = licensees.map((_, i) =>
        terms(ethers, {
          productId: BigInt(100 + i),
          seats: BigInt(i + 1),
          locked: i === 1,
          requestRef: ethers.id(`batch-${i}`),
        }),
      );
      expect(await token.connect(issuer).issueBatch.staticCall(licensees, batch)).to.equal(2n);
      const receipt = await mined(token.connect(issuer).issueBatch(licensees, batch));
      for (const [i, licensee] of licensees.entries()) {
        const id = BigInt(2 + i);
        expect(await token.ownerOf(id)).to.equal(licensee);
        const record = (await token.license(id)) as LicenseRecord;
        expect(record.productId).to.equal(BigInt(100 + i));
        expect(record.seats).to.equal(BigInt(i + 1));
        expect(record.locked).to.equal(i === 1);
        expect(await token.tokenOfRequest(ethers.id(`batch-${i}`))).to.equal(id);
      }
      expect(await token.nextTokenId()).to.equal(5n);

      // The service recovers every token id (and its request) from the receipt alone.
      const logs = parsedLogs(token, receipt);
      expect(logs.map((l) => l.name)).to.deep.equal([
        "Transfer",
        "LicenseIssued",
        "Unlocked",
        "Transfer",
        "LicenseIssued",
        "Locked",
        "Transfer",
        "LicenseIssued",
        "Unlocked",
      ]);
      const issued = logs
        .filter((l) => l.name === "LicenseIssued")
        .map((l) => [l.args[0], l.args[1], l.args[2]]);
      expect(issued).to.deep.equal(
        licensees.map((licensee, i) => [BigInt(2 + i), licensee, ethers.id(`batch-${i}`)]),
      );
    });

    it("reverts with LicenseEmptyBatch for an empty batch", async function () {
      const { token, issuer } = await networkHelpers.loadFixture(deployed);
      await expect(token.connect(issuer).issueBatch([], [])).to.be.revertedWithCustomError(
        token,
        "LicenseEmptyBatch",
      );
    });

    it("reverts with LicenseBatchLengthMismatch when the lengths differ", async function () {
      const { token, issuer, alice, bob } = await networkHelpers.loadFixture(deployed);
      await expect(token.connect(issuer).issueBatch([alice.address, bob.address], [terms(ethers)]))
        .to.be.revertedWithCustomError(token, "LicenseBatchLengthMismatch")
        .withArgs(2n, 1n);
      await expect(token.connect(issuer).issueBatch([alice.address], [terms(ethers), terms(ethers)]))
        .to.be.revertedWithCustomError(token, "LicenseBatchLengthMismatch")
        .withArgs(1n, 2n);
    });

    it("is all-or-nothing: one bad entry reverts the batch, naming its token id", async function () {
      const { token, issuer, alice, bob, carol } = await networkHelpers.loadFixture(deployed);
      const batch = [terms(ethers), terms(ethers), terms(ethers, { termsHash: ZERO_HASH })];
      await expect(token.connect(issuer).issueBatch([alice.address, bob.address, carol.address], batch))
        .to.be.revertedWithCustomError(token, "LicenseEmptyTermsHash")
        .withArgs(3n);
      await expect(
        token.connect(issuer).issueBatch([alice.address, ZERO_ADDRESS], [terms(ethers), terms(ethers)]),
      )
        .to.be.revertedWithCustomError(token, "ERC721InvalidReceiver")
        .withArgs(ZERO_ADDRESS);
      expect(await token.nextTokenId()).to.equal(1n);
      expect(await token.balanceOf(alice.address)).to.equal(0n);
    });

    it("rejects a request reference used twice within one batch", async function () {
      const { token, issuer, alice, bob } = await networkHelpers.loadFixture(deployed);
      const ref = ethers.id("dup");
      await expect(
        token
          .connect(issuer)
          .issueBatch(
            [alice.address, bob.address],
            [terms(ethers, { requestRef: ref }), terms(ethers, { requestRef: ref })],
          ),
      )
        .to.be.revertedWithCustomError(token, "LicenseDuplicateRequest")
        .withArgs(ref, 1n);
    });

    it("rejects a request reference issued by an earlier transaction", async function () {
      const { token, issuer, alice, bob } = await networkHelpers.loadFixture(deployed);
      const ref = ethers.id("earlier");
      await mined(token.connect(issuer).issue(alice.address, terms(ethers, { requestRef: ref })));
      await expect(
        token
          .connect(issuer)
          .issueBatch([bob.address, bob.address], [terms(ethers), terms(ethers, { requestRef: ref })]),
      )
        .to.be.revertedWithCustomError(token, "LicenseDuplicateRequest")
        .withArgs(ref, 1n);
    });

    it("reverts with LicenseInvalidExpiry naming the offending entry", async function () {
      const { token, issuer, alice, bob } = await networkHelpers.loadFixture(deployed);
      const next = BigInt(await networkHelpers.time.latest()) + 5n;
      await networkHelpers.time.setNextBlockTimestamp(next);
      await expect(
        token
          .connect(issuer)
          .issueBatch([alice.address, bob.address], [terms(ethers), terms(ethers, { expiresAt: 1n })]),
      )
        .to.be.revertedWithCustomError(token, "LicenseInvalidExpiry")
        .withArgs(2n, 1n, next);
    });
  });
});
