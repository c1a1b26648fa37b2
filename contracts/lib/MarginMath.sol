// SPDX-License-Identifier: MIT
pragma solidity 0.8.17;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title MarginMath
/// @notice The margin arithmetic of src/engine/margin.ts, to the unit, so that the contract and the
/// engine agree on "below maintenance at price p". Notional and PnL round down, requirements and the
/// penalty round up. Every conversion is checked: absurd values revert rather than wrap.
library MarginMath {
    int256 internal constant NOTIONAL_DIVISOR = 1e10; // size 1e-8 * price 1e8 -> collateral 1e6
    int256 internal constant FRACTION_ONE = 1e6; // ppm

    /// @dev floor(a / b) for b > 0 (Solidity's `/` truncates toward zero).
    function divFloor(int256 a, int256 b) internal pure returns (int256 q) {
        q = a / b;
        if (a % b != 0 && a < 0) q -= 1;
    }

    /// @dev ceil(a / b) for b > 0.
    function divCeil(int256 a, int256 b) internal pure returns (int256 q) {
        q = a / b;
        if (a % b != 0 && a > 0) q += 1;
    }

    /// @dev floor(|size| * price / 1e10).
    function notional(int256 size, uint256 price) internal pure returns (int256) {
        int256 absSize = size < 0 ? -size : size;
        return divFloor(absSize * SafeCast.toInt256(price), NOTIONAL_DIVISOR);
    }

    /// @dev floor(size * price / 1e10) - costBasis.
    function unrealizedPnl(int256 size, int256 costBasis, uint256 price) internal pure returns (int256) {
        return divFloor(size * SafeCast.toInt256(price), NOTIONAL_DIVISOR) - costBasis;
    }

    /// @dev ceil((n * mmf - mmDeduction) / 1e6): the requirement of notional n in a tier (mmf, mmDeduction).
    /// The tier is the last after the first whose floor is <= n, else the first (MarginApp picks it).
    function requirement(int256 n, uint32 mmf, uint256 mmDeduction) internal pure returns (int256) {
        return divCeil(n * int256(uint256(mmf)) - SafeCast.toInt256(mmDeduction), FRACTION_ONE);
    }

    /// @dev ceil(n * penaltyPpm / 1e6).
    function penalty(int256 n, uint32 penaltyPpm) internal pure returns (int256) {
        return divCeil(n * int256(uint256(penaltyPpm)), FRACTION_ONE);
    }
}
