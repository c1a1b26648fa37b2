/**
 * Files the program reads beside its code. Run from source (src/, under tsx
 * or Node's type stripping) they sit beside the modules that read them; in
 * the bundle (dist/nitro-margin.mjs, built by scripts/build-cli.ts) the
 * worker is its own bundle, the page a copy and the contracts' artifacts in
 * contracts/, all beside it (what the published package holds). From source
 * the artifacts are Hardhat's build output one folder up.
 */
declare const NITRO_MARGIN_BUNDLE: boolean | undefined;
declare const NITRO_MARGIN_COMMIT: string | undefined;
/** Whether this is the bundle (dist/) rather than src/. */
export const BUNDLED = typeof NITRO_MARGIN_BUNDLE !== "undefined";
const bundled = BUNDLED;
/** The commit the bundle was built from; from source, undefined (the caller asks git). */
export const BUILT_FROM_COMMIT: string | undefined =
  typeof NITRO_MARGIN_COMMIT !== "undefined" ? NITRO_MARGIN_COMMIT : undefined;

/** dist/ in the bundle: this module sits in an entry file there, or in one of its shared chunks in dist/chunks/. */
const DIST = bundled ? new URL(import.meta.url.includes("/chunks/") ? "../" : "./", import.meta.url) : undefined;

/** Hardhat's build output (`npm run build:contracts`), or the bundle's trimmed copy (flat: `<Name>.json`). */
export const ARTIFACTS_DIR = DIST ? new URL("./contracts/", DIST) : new URL("../artifacts/", import.meta.url);
export const SIGNING_WORKER_URL = DIST
  ? new URL("./signing-worker.mjs", DIST)
  : new URL("./hub/signing-worker.ts", import.meta.url);
export const DASHBOARD_PAGE_URL = DIST
  ? new URL("./page.html", DIST)
  : new URL("./hub/dashboard/page.html", import.meta.url);
