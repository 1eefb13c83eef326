/**
 * The flags `ksm-scorer serve` wants node to run with: the bin's shebang passes them, worker
 * processes are forked with them, and a serve started without them says so at start.
 *
 * --no-memory-reducer: V8's memory reducer shrinks an idle heap to its minimum; the next burst of
 * calls then runs in a heap so small that it is marked and compacted every ~100 ms, at half the
 * calls per second, for as long as the burst lasts (docs/benchmarks.md, "After an idle spell").
 * A service's heap should stay as its load made it. V8 reads the flag only at start.
 */
export const NODE_FLAGS: readonly string[] = ['--no-memory-reducer'];
