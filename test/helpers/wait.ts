/** Polling waits for tests of asynchronous flows (a hub answering, a watcher confirming). */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves once `predicate` holds; fails the test naming `what` after `ms` (generous: the suite must pass on a loaded machine). */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
