import { test } from "uvu";
import * as assert from "uvu/assert";
import { verifyTypedData, type TypedDataField } from "ethers";
import type { Address, MarketId } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";
import { createLocalOracle, devOracleKey, staticPriceSource } from "../../src/oracle/local-signer.ts";
import { oracleTypedDataDomain, PRICE_REPORT_TYPES, verifyPriceReport } from "../../src/oracle/report.ts";

const domain = { chainId: 31337n, verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3" as Address };
const BTC = "BTC-PERP" as MarketId;
const ETH = "ETH-PERP" as MarketId;

test("dev keys are deterministic and distinct per label", () => {
  assert.is(devOracleKey("a"), devOracleKey("a"));
  assert.is.not(devOracleKey("a"), devOracleKey("b"));
  assert.match(devOracleKey("a"), /^0x[0-9a-f]{64}$/);
});

test("reportsFrom signs each priced market at the caller's time", () => {
  const oracle = createLocalOracle({ privateKey: devOracleKey("test"), domain });
  const source = staticPriceSource({ [BTC]: (65_000n * 10n ** 8n) as Price });
  const reports = oracle.reportsFrom(source, [BTC, ETH], 1_700_000_000n);
  assert.is(reports.length, 1);
  const [r] = reports;
  assert.is(r!.market, BTC);
  assert.is(r!.timestamp, 1_700_000_000n);
  verifyPriceReport(domain, r!, oracle.address);
  const value = {
    market: "0x" + Buffer.from(BTC.padEnd(32, "\0")).toString("hex"),
    price: r!.price,
    timestamp: r!.timestamp,
  };
  assert.is(
    verifyTypedData(
      oracleTypedDataDomain(domain),
      PRICE_REPORT_TYPES as Record<string, TypedDataField[]>,
      value,
      r!.signature,
    ),
    oracle.address,
  );
  // Pure: same inputs, same report.
  assert.equal(oracle.sign(BTC, r!.price, 1_700_000_000n), r);
});

test("a bad key is refused", () => {
  assert.throws(
    () => createLocalOracle({ privateKey: ("0x" + "00".repeat(32)) as `0x${string}` as never, domain }),
    (e: Error) => (e as { code?: string }).code === "INVALID_PRIVATE_KEY",
  );
});

test.run();
