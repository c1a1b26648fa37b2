// SPDX-License-Identifier: MIT
pragma solidity 0.8.17;

/// @dev The margin appData, version 1, exactly as src/protocol/app-data.ts encodes it:
/// appData = abi.encode(uint8 version, bytes payload), payload = abi.encode(MarginStateV1).
/// Kept in one file so the contract and its libraries share one definition of the layout.

/// @dev An oracle-signed price (EIP-712 PriceReport, see src/oracle/report.ts).
struct PriceReport {
    bytes32 market;
    uint256 price; // 1e8
    uint64 timestamp; // unix seconds
    bytes signature; // 65 bytes r || s || v, low-s
}

/// @dev A trader position; the hub holds the opposite. Sizes 1e-8, collateral 1e6.
struct Position {
    bytes32 market;
    int256 size;
    int256 costBasis;
    int256 fundingIndex;
}

/// @dev requirement(N) = ceil((N * mmf - mmDeduction) / 1e6) for N in this tier (src/engine/margin.ts).
struct MaintenanceTier {
    uint256 notionalFloor;
    uint32 mmf; // ppm
    uint256 mmDeduction; // collateral * ppm
}

/// @dev What the contract needs to judge a unilateral settlement in one market.
struct MarketTerms {
    bytes32 market;
    uint64 settleWindow; // seconds: how old a report may be at block.timestamp
    uint32 liquidationPenalty; // ppm of closed notional
    MaintenanceTier[] tiers;
}

struct MarginStateV1 {
    uint8 kind;
    bytes32 riskParamsHash;
    address oracle;
    int256 traderCash;
    Position[] positions;
    PriceReport[] marks;
    MarketTerms[] terms;
}
