/**
 * Runs `work`, and says so through `onslow` when it takes long: `onslow(true)` once `ms`
 * have passed without it settling, `onslow(false)` when it settles (either way). Used where
 * the window would otherwise wait without a word (a sign-in that converts the station's
 * data after an update takes seconds on a large station).
 */
export async function withSlowNotice<T>(
  work: () => Promise<T>,
  ms: number,
  onslow: (slow: boolean) => void,
): Promise<T> {
  const timer = setTimeout(() => onslow(true), ms);
  try {
    return await work();
  } finally {
    clearTimeout(timer);
    onslow(false);
  }
}
