/**
 * Files the program reads beside its code. Run from source (src/, under tsx
 * or Node's type stripping) they sit beside the modules that read them; in
 * the bundle (dist/nitro-margin.mjs, built by scripts/build-cli.ts) the
 * worker is its own bundle and the page a copy, both beside it. Either way
 * this file's folder is one below the project's root, where artifacts/ is.
 */
declare const NITRO_MARGIN_BUNDLE: boolean | undefined;
const bundled = typeof NITRO_MARGIN_BUNDLE !== "undefined";

/** Hardhat's build output (`npm run build:contracts`). */
export const ARTIFACTS_DIR = new URL("../artifacts/", import.meta.url);
export const SIGNING_WORKER_URL = new URL(bundled ? "./signing-worker.mjs" : "./hub/signing-worker.ts", import.meta.url);
export const DASHBOARD_PAGE_URL = new URL(bundled ? "./page.html" : "./hub/dashboard/page.html", import.meta.url);
