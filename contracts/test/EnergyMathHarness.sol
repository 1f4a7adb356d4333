// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {EnergyMath} from "../libraries/EnergyMath.sol";

/// @notice Exposes EnergyMath so the shared rounding vectors can be checked against Solidity.
contract EnergyMathHarness {
    function amountFor(uint256 energyWh, uint256 pricePerKWh) external pure returns (uint256) {
        return EnergyMath.amountFor(energyWh, pricePerKWh);
    }

    function energyWhAt(uint64 powerW, uint64 seconds_) external pure returns (uint256) {
        return EnergyMath.energyWhAt(powerW, seconds_);
    }

    function bpsOf(uint256 value, uint256 bps) external pure returns (uint256) {
        return EnergyMath.bpsOf(value, bps);
    }

    function withinTolerance(uint256 deliveredWh, uint256 contractedWh, uint256 toleranceBps)
        external
        pure
        returns (bool)
    {
        return EnergyMath.withinTolerance(deliveredWh, contractedWh, toleranceBps);
    }
}
