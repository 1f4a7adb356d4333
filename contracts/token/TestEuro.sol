// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title tEUR: the local chain's payment token
/// @notice A 6-decimal euro test token with ERC-2612 permit and an open faucet, standing in for
///         the production euro stablecoin. The faucet exists only so local and test wallets can
///         fund themselves; never deploy this token where its units have value.
contract TestEuro is ERC20, ERC20Permit {
    /// @notice Most a single faucet call may mint: 10,000 tEUR.
    uint256 public constant MAX_FAUCET_AMOUNT = 10_000 * 1e6;

    /// @notice A faucet request asked for more than one call may mint.
    error FaucetAmountTooLarge(uint256 requested, uint256 maximum);

    /// @notice The faucet minted `amount` to `to`.
    event FaucetDripped(address indexed to, uint256 amount);

    constructor() ERC20("Test Euro", "tEUR") ERC20Permit("Test Euro") {}

    /// @notice 6 decimals, like the euro stablecoins the production market settles in.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mints up to MAX_FAUCET_AMOUNT to `to`; anyone may call it on a test chain.
    function faucet(address to, uint256 amount) external {
        if (amount > MAX_FAUCET_AMOUNT) revert FaucetAmountTooLarge(amount, MAX_FAUCET_AMOUNT);
        _mint(to, amount);
        emit FaucetDripped(to, amount);
    }
}
