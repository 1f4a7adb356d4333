// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Energy sources
/// @notice The kinds of energy a seller may sell, as small integers so that a set of them fits a
///         uint8 bitmask (`1 << source`). Zero is "none": a buy order's source.
library EnergySource {
    uint8 internal constant NONE = 0;
    uint8 internal constant SOLAR = 1;
    uint8 internal constant WIND = 2;
    uint8 internal constant STORAGE = 3;
    uint8 internal constant MIXED = 4;

    /// @dev Bits 1..4: every valid source.
    uint8 internal constant ALL = 0x1e;

    /// @notice Whether `source` is one of solar, wind, storage, mixed.
    function isValid(uint8 source) internal pure returns (bool) {
        return source >= SOLAR && source <= MIXED;
    }

    /// @notice Whether `mask` contains `source`. An empty mask contains nothing.
    function contains(uint8 mask, uint8 source) internal pure returns (bool) {
        return isValid(source) && (mask & (uint8(1) << source)) != 0;
    }
}
