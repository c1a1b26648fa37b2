/**
 * Guards the error catalogue: every `*_ERRORS` export of src/errors/*.ts is a
 * domain catalogue; numbers are unique across all of them and inside their
 * domain's range, codes are unique, and each domain class builds its errors.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync } from "node:fs";
import { DOMAIN_RANGES, MarginError, type Catalogue, type ErrorDomain } from "../../src/errors/base.ts";

const test = suite("error catalogue");
const DIR = new URL("../../src/errors/", import.meta.url);

interface Loaded {
  file: string;
  domain: ErrorDomain;
  catalogue: Catalogue;
  errorClass: new (code: string) => MarginError;
}

async function loadAll(): Promise<Loaded[]> {
  const loaded: Loaded[] = [];
  for (const file of readdirSync(DIR).filter((f) => f.endsWith(".ts") && f !== "base.ts")) {
    const mod = (await import(new URL(file, DIR).href)) as Record<string, unknown>;
    const catalogues = Object.entries(mod).filter(([name]) => name.endsWith("_ERRORS"));
    const classes = Object.values(mod).filter(
      (v): v is Loaded["errorClass"] => typeof v === "function" && v.prototype instanceof MarginError,
    );
    assert.is(catalogues.length, 1, `${file} exports one catalogue`);
    assert.is(classes.length, 1, `${file} exports one error class`);
    const errorClass = classes[0]!;
    const catalogue = catalogues[0]![1] as Catalogue;
    const domain = new errorClass(Object.keys(catalogue)[0]!).domain;
    loaded.push({ file, domain, catalogue, errorClass });
  }
  return loaded;
}

test("numbers are unique and inside their domain's range; codes are unique", async () => {
  const all = await loadAll();
  assert.ok(all.length >= 3, "catalogues found");
  const numbers = new Map<number, string>();
  const codes = new Map<string, string>();
  for (const { file, domain, catalogue, errorClass } of all) {
    const [low, high] = DOMAIN_RANGES[domain];
    for (const [code, descriptor] of Object.entries(catalogue)) {
      assert.ok(
        descriptor.number >= low && descriptor.number <= high,
        `${file} ${code} ${descriptor.number} outside ${low}-${high}`,
      );
      assert.not.ok(
        numbers.has(descriptor.number),
        `${code} reuses ${descriptor.number} of ${numbers.get(descriptor.number)}`,
      );
      assert.not.ok(codes.has(code), `${code} defined in ${file} and ${codes.get(code)}`);
      assert.match(code, /^[A-Z][A-Z0-9_]+$/);
      assert.ok(descriptor.title.length > 0);
      numbers.set(descriptor.number, code);
      codes.set(code, file);
      const error = new errorClass(code);
      assert.is(error.code, code);
      assert.is(error.number, descriptor.number);
      assert.is(error.domain, domain);
      assert.equal(error.toJSON().code, code);
    }
  }
});

test("an unknown code is a programming error, not a silent default", async () => {
  const [first] = await loadAll();
  assert.throws(() => new first!.errorClass("NO_SUCH_CODE"), TypeError);
});

test.run();
