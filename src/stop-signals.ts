/**
 * SIGTERM and SIGINT for `serve`, from the first moment the command runs: cli.ts imports this
 * first, so a signal that comes while node loads the rest is neither lost (as PID 1 in a container,
 * a signal with no handler is ignored) nor fatal (a worker process being forked by the primary).
 * Signals wait here until serve says what they mean (onStopSignal). Other commands are left to
 * node's defaults: Ctrl-C ends them.
 */
type StopListener = (signal: NodeJS.Signals) => void;

let listener: StopListener | undefined;
const waiting: NodeJS.Signals[] = [];
let holding = false;

function hold(): void {
  if (holding) return;
  holding = true;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => (listener === undefined ? waiting.push(signal) : listener(signal)));
  }
}

if (process.argv[2] === 'serve') hold();

/** From now on `onSignal` hears the stop signals, first those that came before. */
export function onStopSignal(onSignal: StopListener): void {
  hold();
  listener = onSignal;
  for (const signal of waiting.splice(0)) onSignal(signal);
}
