// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Money and energy arithmetic shared with the TypeScript side
/// @notice One rounding rule for the whole system: amount = energyWh * pricePerKWh / 1000,
///         rounded down. `test/vectors/amounts.json` holds vectors that this library and the
///         TypeScript `amountFor()` must both reproduce.
library EnergyMath {
    uint256 internal constant WH_PER_KWH = 1000;
    uint256 internal constant BPS = 10_000;
    uint256 internal constant SECONDS_PER_HOUR = 3600;

    /// @notice Payment for `energyWh` at `pricePerKWh` (token base units per kWh), rounded down.
    /// @dev energyWh < 2^64 and pricePerKWh < 2^128 in every caller, so the product fits 2^192.
    function amountFor(uint256 energyWh, uint256 pricePerKWh) internal pure returns (uint256) {
        return (energyWh * pricePerKWh) / WH_PER_KWH;
    }

    /// @notice The most energy a connection of `powerW` watts carries in `seconds`, in Wh,
    ///         rounded down: `powerW * seconds / 3600`.
    function energyWhAt(uint64 powerW, uint64 seconds_) internal pure returns (uint256) {
        // Cannot overflow: the product of two numbers below 2^64 is below 2^128.
        unchecked {
            return (uint256(powerW) * seconds_) / SECONDS_PER_HOUR;
        }
    }

    /// @notice `value * bps / 10_000`, rounded down.
    function bpsOf(uint256 value, uint256 bps) internal pure returns (uint256) {
        return (value * bps) / BPS;
    }

    /// @notice Whether `deliveredWh` is within `toleranceBps` below `contractedWh`.
    /// @dev Cross-multiplied so no division rounds the boundary: delivered/contracted >= 1 - tol.
    function withinTolerance(uint256 deliveredWh, uint256 contractedWh, uint256 toleranceBps)
        internal
        pure
        returns (bool)
    {
        return deliveredWh * BPS >= contractedWh * (BPS - toleranceBps);
    }
}
