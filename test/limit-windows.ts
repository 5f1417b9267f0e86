// The Workers Rate Limiting bindings count in fixed one-minute windows. A test that must spend a budget
// inside one window runs again, on fresh keys (attempt n), if a window boundary fell inside the run.
export async function inOneWindow<T>(run: (attempt: number) => Promise<T>, attempts = 3): Promise<T> {
  for (let n = 0; ; n++) {
    const window = Math.floor(Date.now() / 60_000);
    const result = await run(n);
    if (Math.floor(Date.now() / 60_000) === window || n === attempts - 1) return result;
  }
}
