// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @dev Interface of the https://eips.ethereum.org/EIPS/eip-5192[ERC-5192] Minimal Soulbound NFTs standard.
 *
 * The ERC-165 identifier for this interface is `0xb45a3c0e` (the selector of `locked(uint256)`).
 */
interface IERC5192 {
    /// @notice Emitted when the locking status is changed to locked.
    /// @dev If a token is minted and the status is locked, this event should be emitted.
    /// @param tokenId The identifier for a token.
    event Locked(uint256 tokenId);

    /// @notice Emitted when the locking status is changed to unlocked.
    /// @dev If a token is minted and the status is unlocked, this event should be emitted.
    /// @param tokenId The identifier for a token.
    event Unlocked(uint256 tokenId);

    /// @notice Returns the locking status of a token.
    /// @dev Tokens assigned to the zero address are considered invalid, and queries about them throw.
    /// @param tokenId The identifier for a token.
    function locked(uint256 tokenId) external view returns (bool);
}
