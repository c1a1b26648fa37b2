// SPDX-License-Identifier: MIT
pragma solidity 0.8.17;

/// @dev The margin appData, exactly as src/protocol/app-data.ts encodes it:
///   format 2 (every signed state):        appData = abi.encode(uint8 2, MarginStateV2)
///   format 3 (a unilateral candidate):    appData = abi.encode(uint8 3, SettlementV2)
/// The first word names the format, so a reader decodes each with its own struct.
/// A state commits to its channel's constants (oracle, risk-parameter hash, on-chain terms) by hash
/// only, keccak256(abi.encode(oracle, riskParamsHash, terms)); the full constants travel once, in
/// the candidate of a unilateral settlement, the one place the contract reads them. Kept in one
/// file so the contract and its libraries share one layout.

/// @dev An oracle-signed price (EIP-712 PriceReport, see src/oracle/report.ts).
struct PriceReport {
    bytes32 market;
    uint256 price; // 1e8
    uint64 timestamp; // unix seconds
    bytes signature; // 65 bytes r || s || v, low-s
}

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

struct MarginStateV2 {
    uint8 kind;
    bytes32 constantsHash;
    int256 traderCash;
    Position[] positions;
    Mark[] marks;
}

/// @dev A unilateral candidate: the settled cash, the proof's constants in full (keccak256 of
/// abi.encode(oracle, riskParamsHash, terms) is the proof's constantsHash), and one signed report
/// per proof position (in the proof's position order). (Reports before terms: the other order
/// overflows solc 0.8.17's stack in the memory decoder.)
struct SettlementV2 {
    int256 traderCash;
    address oracle;
    bytes32 riskParamsHash;
    PriceReport[] reports;
    MarketTerms[] terms;
}
