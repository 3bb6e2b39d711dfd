/**
 * The contract's ABI comes from the compiled artifact: the server decodes every custom error the
 * contract can revert with (a hand-written ABI had missed some), and calls every function it uses.
 */
import { expect } from "chai";
import { Interface, ZeroAddress, ZeroHash } from "ethers";
import { LICENSE_ABI } from "../../server/contract.js";
import { revertName } from "../../server/worker.js";
import { readArtifact } from "../support/artifacts.js";

describe("server: LicenseToken ABI from the compiled artifact", function () {
  const artifact = new Interface(readArtifact("contracts/LicenseToken.sol", "LicenseToken").abi as never);

  it("decodes every custom error of the contract by name", function () {
    const undecoded: string[] = [];
    artifact.forEachError((error) => {
      const args = error.inputs.map((input) =>
        input.baseType === "address" ? ZeroAddress : input.baseType === "bytes32" ? ZeroHash : 1n,
      );
      const data = artifact.encodeErrorResult(error, args);
      const name = revertName(Object.assign(new Error("execution reverted"), { data }));
      if (!name.startsWith(`${error.name}(`)) undecoded.push(error.name);
    });
    expect(undecoded, "custom errors the server cannot name").to.deep.equal([]);
  });

  it("is the artifact's ABI", function () {
    expect(LICENSE_ABI).to.deep.equal(readArtifact("contracts/LicenseToken.sol", "LicenseToken").abi);
  });
});
