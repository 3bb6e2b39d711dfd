// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ChainIdEcho
/// @notice Test helper for the launcher tests: proves a contract was deployed to, and executes on, a
/// given chain by returning the chain id it runs on and the one it was deployed to.
contract ChainIdEcho {
    uint256 public immutable deployedOnChainId;

    constructor() {
        deployedOnChainId = block.chainid;
    }

    function chainId() external view returns (uint256) {
        return block.chainid;
    }
}
