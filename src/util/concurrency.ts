/**
 * Bounded concurrency, the one way gantry runs many independent async jobs (hashing source
 * files, pushing blobs): never more than `limit` at once, so file descriptors, sockets and
 * threads stay bounded however many items there are.
 *
 * On failure it neither abandons running work nor starts more: the first error stops new
 * work from starting, the calls already running are waited for (so none is still writing
 * when the caller cleans up or reports), and only then is that first error thrown. Later
 * errors from calls that were already running are dropped; the first one is the cause.
 */

/**
 * Runs `work` over `items` with at most `limit` calls running at once and returns the
 * results in the order of `items`, whatever order the calls finish in.
 * @throws the first error any call threw (or rejected with), once every running call has settled;
 *         RangeError when `limit` is not 1 or more.
 */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!(limit >= 1)) throw new RangeError(`the concurrency limit ${limit} must be 1 or more`);
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try {
        results[i] = await work(items[i] as T, i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  // Workers never reject, so this waits for every running call, failed or not.
  await Promise.all(Array.from({ length: Math.floor(Math.min(limit, items.length)) }, worker));
  if (failure !== undefined) throw failure.error;
  return results;
}
