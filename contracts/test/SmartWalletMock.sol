// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title SmartWalletMock
/// @notice A minimal ERC-1271 smart wallet for tests: signatures by its owner key are valid
///         while `accepting` is true; the owner can make it call anything (approve, register).
contract SmartWalletMock is IERC1271 {
    address public immutable owner;
    bool public accepting = true;

    error NotOwner(address caller);
    error CallFailed(bytes reason);

    constructor(address walletOwner) {
        owner = walletOwner;
    }

    function setAccepting(bool value) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        accepting = value;
    }

    function execute(address target, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        (bool ok, bytes memory result) = target.call(data);
        if (!ok) revert CallFailed(result);
        return result;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        if (accepting && err == ECDSA.RecoverError.NoError && signer == owner) return IERC1271.isValidSignature.selector;
        return 0xffffffff;
    }
}
