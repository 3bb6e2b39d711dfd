/**
 * Token URIs across chains: the contract has the same address on every chain (same deployer, same nonce),
 * yet token 1 on chain A and token 1 on chain B are different licenses, so their URIs must differ. Two
 * in-process networks with different chain ids, the same contract deployed by the same account at nonce 0.
 */
import { expect } from "chai";
import { network } from "hardhat";
import { getCreateAddress } from "ethers";
import { BASE_URI, deployLicenseToken, expectedTokenURI, mined, terms } from "./helpers.js";

const CHAIN_A = 31_337n;
const CHAIN_B = 31_338n;

const chainA = await network.create();
const chainB = await network.create({ override: { chainId: Number(CHAIN_B) } });

describe("LicenseToken: token URIs differ per chain", function () {
  it("token 1 at the same address on two chains has two URIs naming chain id and contract", async function () {
    const uris: string[] = [];
    const addresses: string[] = [];
    for (const [connection, chainId] of [
      [chainA, CHAIN_A],
      [chainB, CHAIN_B],
    ] as const) {
      const { ethers } = connection;
      expect((await ethers.provider.getNetwork()).chainId).to.equal(chainId);
      const d = await deployLicenseToken(ethers);
      const address = d.token.target as string;
      expect(address).to.equal(getCreateAddress({ from: d.admin.address, nonce: 0 }));
      await mined(d.token.connect(d.issuer).issue(d.alice.address, terms(ethers)));
      const uri = (await d.token.tokenURI(1n)) as string;
      expect(uri).to.equal(expectedTokenURI(BASE_URI, chainId, address, 1n));
      expect(uri).to.equal(`${BASE_URI}${chainId}/${address.toLowerCase()}/1`);
      uris.push(uri);
      addresses.push(address);
    }
    expect(addresses[0]).to.equal(addresses[1]);
    expect(uris[0]).to.not.equal(uris[1]);
  });
});
