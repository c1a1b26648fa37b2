import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { getAddress, zeroPadValue } from "ethers";
import { addressToDestination } from "../../src/protocol/channel-setup.ts";
import type { Address } from "../../src/protocol/types.ts";

test("addressToDestination: the bytes ethers' zeroPadValue gives, for an address in any case", () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), (bytes) => {
      const lower = "0x" + Buffer.from(bytes).toString("hex");
      const expected = zeroPadValue(lower, 32).toLowerCase();
      for (const form of [lower, getAddress(lower), "0x" + lower.slice(2).toUpperCase()])
        assert.is(addressToDestination(form as Address), expected);
    }),
    { numRuns: 300 },
  );
});

test("addressToDestination: what is not a 20-byte address still goes through ethers (and its refusals)", () => {
  assert.is(addressToDestination("0x01" as Address), "0x" + "00".repeat(31) + "01");
  assert.throws(() => addressToDestination(("0x" + "11".repeat(33)) as Address));
  assert.throws(() => addressToDestination("0xzz" as Address));
});

test.run();
