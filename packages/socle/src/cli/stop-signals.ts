/**
 * Within this time after a stop signal, the same signal again is the same request, not a second
 * one: Ctrl-C under `npm start` reaches Socle from the terminal and again from npm, which forwards
 * the signals it gets to its script; systemd signals every process of the unit, npm included.
 */
export const REPEATED_SIGNAL_WINDOW_MS = 1000;

export interface StopSignalHandlers {
  /** The first SIGTERM or SIGINT: stop gracefully. */
  stop(signal: NodeJS.Signals): void;
  /** A later one (another signal, or the same one past the window): stop now. */
  force(signal: NodeJS.Signals): void;
}

/** Listens for SIGTERM and SIGINT; returns the function that stops listening. */
export function onStopSignals(handlers: StopSignalHandlers): () => void {
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (first === undefined) {
      first = { signal, at: performance.now() };
      handlers.stop(signal);
    } else if (signal !== first.signal || performance.now() - first.at >= REPEATED_SIGNAL_WINDOW_MS) {
      handlers.force(signal);
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
