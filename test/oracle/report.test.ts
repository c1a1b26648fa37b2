import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { toUtf8Bytes, TypedDataEncoder, verifyTypedData, Wallet, type TypedDataField } from "ethers";
import { errorCode as code } from "../helpers/wire-code.ts";
import type { PriceReport } from "../../src/protocol/margin-state.ts";
import { nobleSignatureBackend } from "../../src/protocol/sig-backend.ts";
import { signerFromPrivateKey, Signatures } from "../../src/protocol/sign.ts";
import type { Address, Hex, MarketId } from "../../src/protocol/types.ts";
import type { Price } from "../../src/protocol/units.ts";
import {
  ageSeconds,
  oracleTypedDataDomain,
  PRICE_REPORT_TYPE,
  PRICE_REPORT_TYPES,
  priceReportDigest,
  recoverPriceReportSigner,
  signPriceReport,
  verifyPriceReport,
  type OracleDomain,
} from "../../src/oracle/report.ts";

const KEY = ("0x" + "11".repeat(32)) as Hex;
const signer = signerFromPrivateKey(KEY);
const domain: OracleDomain = {
  chainId: 31337n,
  verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3" as Address,
};
const unsigned = { market: "BTC-PERP" as MarketId, price: 6_543_210_000_000n as Price, timestamp: 1_700_000_000n };
const types = PRICE_REPORT_TYPES as Record<string, TypedDataField[]>;

function ethersValue(r: { market: string; price: bigint; timestamp: bigint }) {
  return { market: toUtf8Bytes(r.market.padEnd(32, "\0")), price: r.price, timestamp: r.timestamp };
}

test("type string is what MarginApp must hash", () => {
  assert.is(TypedDataEncoder.from(types).encodeType("PriceReport"), PRICE_REPORT_TYPE);
  assert.is(PRICE_REPORT_TYPE, "PriceReport(bytes32 market,uint256 price,uint64 timestamp)");
});

test("known answer: signature equals ethers Wallet.signTypedData byte for byte and recovers", async () => {
  const report = signPriceReport(domain, unsigned, signer);
  const wallet = new Wallet(KEY);
  const expected = await wallet.signTypedData(oracleTypedDataDomain(domain), types, ethersValue(unsigned));
  assert.is(report.signature, expected);
  assert.is(report.signature.length, 2 + 130);
  assert.ok(report.signature.endsWith("1b") || report.signature.endsWith("1c"));
  assert.is(
    verifyTypedData(oracleTypedDataDomain(domain), types, ethersValue(unsigned), report.signature),
    signer.address,
  );
  assert.is(recoverPriceReportSigner(domain, report), signer.address);
  verifyPriceReport(domain, report, signer.address);
  verifyPriceReport(domain, report, signer.address.toLowerCase() as Address);
  assert.ok(Object.isFrozen(report));
});

test("pinned digest (regression vector)", () => {
  // Pinned so that a change to the encoding is a deliberate, visible protocol change.
  const digest = priceReportDigest(domain, unsigned);
  assert.is(digest, TypedDataEncoder.hash(oracleTypedDataDomain(domain), types, ethersValue(unsigned)));
  assert.is(digest, "0x330e1f7283a179c2089a32494e0244ffece5939ed08f1257f4de947ff634aaa2");
  assert.is(signer.address, "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A");
  assert.is(
    signPriceReport(domain, unsigned, signer).signature,
    "0xe0a17e93e264ddbabf76741bdcb3b4120358cd5d3c4749ca442b8d062d82fe66563c83c62f381ef29a35b98d81b792298f3210c83e88cfda248e8d52e4ac25161b",
  );
});

test("tampered report or domain: wrong signer", () => {
  const report = signPriceReport(domain, unsigned, signer);
  const cases: [PriceReport, OracleDomain][] = [
    [{ ...report, price: (report.price + 1n) as Price }, domain],
    [{ ...report, timestamp: report.timestamp + 1n }, domain],
    [{ ...report, market: "ETH-PERP" as MarketId }, domain],
    [report, { ...domain, chainId: 1n }],
    [report, { ...domain, verifyingContract: "0x0000000000000000000000000000000000000001" as Address }],
  ];
  for (const [r, d] of cases)
    assert.is(
      code(() => verifyPriceReport(d, r, signer.address)),
      "ORACLE_WRONG_SIGNER",
    );
  const other = signerFromPrivateKey(("0x" + "22".repeat(32)) as Hex);
  assert.is(
    code(() => verifyPriceReport(domain, report, other.address)),
    "ORACLE_WRONG_SIGNER",
  );
});

test("malformed signatures: bad signature", () => {
  const report = signPriceReport(domain, unsigned, signer);
  const sig = report.signature;
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
  const s = BigInt("0x" + sig.slice(66, 130));
  const highS = (sig.slice(0, 66) + (n - s).toString(16).padStart(64, "0") + (sig.endsWith("1b") ? "1c" : "1b")) as Hex;
  for (const bad of [
    "0x",
    sig.slice(0, 130),
    sig + "00",
    sig.slice(0, 130) + "00",
    sig.slice(0, 130) + "01",
    highS,
    "0x" + "00".repeat(65),
    "zz",
  ]) {
    assert.is(
      code(() => recoverPriceReportSigner(domain, { ...report, signature: bad as Hex })),
      "ORACLE_BAD_SIGNATURE",
      bad,
    );
  }
});

test("invalid report fields are rejected before hashing", () => {
  assert.is(
    code(() => signPriceReport(domain, { ...unsigned, price: 0n as Price }, signer)),
    "OUT_OF_RANGE",
  );
  assert.is(
    code(() => signPriceReport(domain, { ...unsigned, price: -1n as Price }, signer)),
    "OUT_OF_RANGE",
  );
  assert.is(
    code(() => signPriceReport(domain, { ...unsigned, timestamp: 2n ** 64n }, signer)),
    "OUT_OF_RANGE",
  );
  assert.is(
    code(() => signPriceReport(domain, { ...unsigned, market: "btc-perp" as MarketId }, signer)),
    "INVALID_MARKET_ID",
  );
  assert.is(
    code(() => signPriceReport({ ...domain, verifyingContract: "0x12" as Address }, unsigned, signer)),
    "INVALID_ADDRESS",
  );
});

test("ageSeconds", () => {
  assert.is(ageSeconds(unsigned, 1_700_000_030n), 30n);
  assert.is(ageSeconds(unsigned, 1_699_999_990n), -10n);
});

test("each report is verified once per process; what failed is checked again, and so is any other spelling", () => {
  const base = nobleSignatureBackend();
  let recoveries = 0;
  const counting = new Signatures({
    ...base,
    recover: (hash, rs, recovery) => {
      recoveries++;
      return base.recover(hash, rs, recovery);
    },
  });
  const fresh = signPriceReport(domain, { ...unsigned, timestamp: 1_700_000_123n }, signer);
  for (let i = 0; i < 5; i++) verifyPriceReport(domain, { ...fresh }, signer.address, counting);
  assert.is(recoveries, 1);
  // The same report under another signer, domain or field is a new question: refused each time, never cached.
  const other = signerFromPrivateKey(("0x" + "33".repeat(32)) as Hex);
  for (let i = 0; i < 2; i++) {
    assert.is(
      code(() => verifyPriceReport(domain, fresh, other.address, counting)),
      "ORACLE_WRONG_SIGNER",
    );
    assert.is(
      code(() => verifyPriceReport({ ...domain, chainId: 5n }, fresh, signer.address, counting)),
      "ORACLE_WRONG_SIGNER",
    );
    assert.is(
      code(() => verifyPriceReport(domain, { ...fresh, price: (fresh.price + 1n) as Price }, signer.address, counting)),
      "ORACLE_WRONG_SIGNER",
    );
  }
  assert.is(recoveries, 7);
  // A bad signature is refused whatever was verified before (a high-s twin, an unparseable one).
  assert.is(
    code(() => verifyPriceReport(domain, { ...fresh, signature: "0x1234" as Hex }, signer.address, counting)),
    "ORACLE_BAD_SIGNATURE",
  );
  verifyPriceReport(
    domain,
    { ...fresh, signature: fresh.signature.toUpperCase().replace("0X", "0x") as Hex },
    signer.address,
    counting,
  );
  assert.is(recoveries, 8, "another spelling of the signature is verified afresh");
});

const marketArb = fc.stringMatching(/^[A-Z0-9-]{1,31}$/).map((s) => s as MarketId);
const reportArb = fc.record({
  market: marketArb,
  price: fc.bigInt({ min: 1n, max: 2n ** 256n - 1n }).map((p) => p as Price),
  timestamp: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
});
const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((k) => k.some((b) => b !== 0));

test("property: sign → recover → ethers agrees; any field change breaks it", () => {
  fc.assert(
    fc.property(reportArb, keyArb, fc.bigInt({ min: 1n, max: 2n ** 64n }), (r, key, chainId) => {
      const s = signerFromPrivateKey(key);
      const d = { ...domain, chainId };
      const report = signPriceReport(d, r, s);
      assert.is(recoverPriceReportSigner(d, report), s.address);
      assert.is(verifyTypedData(oracleTypedDataDomain(d), types, ethersValue(r), report.signature), s.address);
      const tampered = { ...report, price: (report.price === 1n ? 2n : report.price - 1n) as Price };
      assert.is(
        code(() => verifyPriceReport(d, tampered, s.address)),
        "ORACLE_WRONG_SIGNER",
      );
    }),
    { numRuns: 50 },
  );
});

test.run();
