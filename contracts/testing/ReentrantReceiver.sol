// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";
import {ILicenseToken} from "../ILicenseToken.sol";

/**
 * @dev Test-only licensee contract that tries to re-enter {ILicenseToken-issue} from `onERC721Received`.
 * It counts the callbacks it receives; issuing to it must never call it back.
 */
contract ReentrantReceiver is IERC721Receiver {
    ILicenseToken private immutable _token;

    /// @dev Number of `onERC721Received` calls this contract received.
    uint256 public callbacks;

    /// @dev Token id minted by the re-entrant call, if any.
    uint256 public reenteredTokenId;

    constructor(ILicenseToken token) {
        _token = token;
    }

    /// @dev Forwards a call to the token (for example `issue`), so tests can make this contract the caller.
    function forward(bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory result) = address(_token).call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
        return result;
    }

    function onERC721Received(address, address, uint256, bytes calldata) external returns (bytes4) {
        ++callbacks;
        ILicenseToken.LicenseTerms memory terms = ILicenseToken.LicenseTerms({
            productId: 666,
            expiresAt: 0,
            seats: 1,
            locked: false,
            termsHash: keccak256("reentered"),
            requestRef: bytes32(0)
        });
        reenteredTokenId = _token.issue(address(this), terms);
        return IERC721Receiver.onERC721Received.selector;
    }
}
