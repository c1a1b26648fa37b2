// SPDX-License-Identifier: MIT
pragma solidity 0.8.17;

/// @dev The margin appData, exactly as src/protocol/app-data.ts encodes it:
///   format 2 (every signed state):        appData = abi.encode(uint8 2, MarginStateV2)
///   format 3 (a unilateral candidate):    appData = uint256 3 || packed settlement (below)
/// The first word names the format, so a reader decodes each with its own layout.
/// A state commits to its channel's constants (oracle, risk-parameter hash, on-chain terms) by hash
/// only: constantsHash = keccak256(abi.encodePacked(oracle, riskParamsHash, termsHash[0..n))), one
/// hash per configured market in the configured order, termsHash = keccak256(packed terms, below).
/// Per-market hashes let a candidate carry in full only the terms of the markets the proof holds.
///
/// Packed terms of one market (45 + 68 * tierCount bytes):
///   bytes32 market | uint64 settleWindow | uint32 liquidationPenalty | uint8 tierCount |
///   tierCount * (uint256 notionalFloor | uint32 mmf | uint256 mmDeduction)
/// Format 3, a unilateral candidate (MarginApp reads it from calldata in place):
///   uint256 3 | int256 traderCash | address oracle | bytes32 riskParamsHash | uint8 marketCount |
///   marketCount slots, in the committed order, each one of
///     uint8 0 | bytes32 termsHash                      (a market the proof does not hold)
///     uint8 1 | packed terms | report                  (a held market: its terms and the price it settles at)
///   report = uint256 price | uint64 timestamp | bytes32 r | bytes32 s | uint8 v  (the oracle's EIP-712
///   PriceReport for the terms' market; 105 bytes). Nothing may follow the last slot.
/// Kept in one file so the contract and its libraries share one layout.

/// @dev The price a state was settled at in one market. Unsigned: both sides checked the report
/// before signing, and the contract reads only its timestamp (a settlement's reports must be newer).
struct Mark {
    bytes32 market;
    uint256 price; // 1e8
    uint64 timestamp; // unix seconds
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

/// @dev Format 2. MarginApp reads the proof's fields from calldata in place, at their ABI offsets.
struct MarginStateV2 {
    uint8 kind;
    bytes32 constantsHash;
    int256 traderCash;
    Position[] positions;
    Mark[] marks;
}
