import { expect } from "chai";
import { network } from "hardhat";
import { deployLicenseToken, mined, terms, type ReceiverContract } from "./helpers.js";

const { ethers, networkHelpers } = await network.create();

/** A token plus a malicious receiver that holds ISSUER_ROLE (the worst case) and re-enters on callbacks. */
async function withAttacker() {
  const d = await deployLicenseToken(ethers);
  const attacker = (await ethers.deployContract("ReentrantReceiver", [
    d.token.target,
  ])) as unknown as ReceiverContract;
  await attacker.waitForDeployment();
  await mined(d.token.connect(d.admin).grantRole(d.ISSUER_ROLE, attacker.target));
  return { ...d, attacker };
}

describe("LicenseToken: no re-entrancy through onERC721Received during issue", function () {
  it("issue to a contract never calls onERC721Received, so the receiver cannot re-enter", async function () {
    const { token, issuer, attacker } = await networkHelpers.loadFixture(withAttacker);
    await mined(token.connect(issuer).issue(attacker.target, terms(ethers)));
    expect(await attacker.callbacks()).to.equal(0n);
    expect(await attacker.reenteredTokenId()).to.equal(0n);
    expect(await token.nextTokenId()).to.equal(2n);
    expect(await token.balanceOf(attacker.target)).to.equal(1n);
  });

  it("issueBatch to the receiver several times mints exactly the batch", async function () {
    const { token, issuer, attacker, alice } = await networkHelpers.loadFixture(withAttacker);
    await mined(
      token
        .connect(issuer)
        .issueBatch(
          [attacker.target, alice.address, attacker.target],
          [terms(ethers), terms(ethers), terms(ethers)],
        ),
    );
    expect(await attacker.callbacks()).to.equal(0n);
    expect(await token.nextTokenId()).to.equal(4n);
    expect(await token.balanceOf(attacker.target)).to.equal(2n);
  });

  it("the receiver issuing to itself (via its own call) is not called back either", async function () {
    const { token, attacker } = await networkHelpers.loadFixture(withAttacker);
    const data = token.interface.encodeFunctionData("issue", [attacker.target, terms(ethers)]);
    await mined(attacker.forward(data));
    expect(await attacker.callbacks()).to.equal(0n);
    expect(await token.ownerOf(1n)).to.equal(attacker.target);
    expect(await token.nextTokenId()).to.equal(2n);
  });

  it("control: the same receiver does re-enter on safeTransferFrom, which only the holder can start", async function () {
    // Proves the attacker's hook works, so the zero counts above are meaningful.
    const { token, issuer, attacker, alice } = await networkHelpers.loadFixture(withAttacker);
    await mined(token.connect(issuer).issue(alice.address, terms(ethers)));
    await mined(
      token.connect(alice).getFunction("safeTransferFrom(address,address,uint256)")(
        alice.address,
        attacker.target,
        1n,
      ),
    );
    expect(await attacker.callbacks()).to.equal(1n);
    expect(await attacker.reenteredTokenId()).to.equal(2n);
    expect(await token.ownerOf(1n)).to.equal(attacker.target);
  });

  it("a contract that cannot receive ERC-721 tokens still receives licenses (no callback check)", async function () {
    const { token, issuer } = await networkHelpers.loadFixture(withAttacker);
    // The token contract itself does not implement onERC721Received.
    await mined(token.connect(issuer).issue(token.target, terms(ethers)));
    expect(await token.ownerOf(1n)).to.equal(token.target);
  });
});
