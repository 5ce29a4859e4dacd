import { afterEach, describe, expect, it, vi } from 'vitest';
import { onStopSignals, REPEATED_SIGNAL_WINDOW_MS } from './stop-signals.js';

let stopListening: (() => void) | undefined;

afterEach(() => {
  stopListening?.();
  vi.useRealTimers();
});

function listen() {
  const calls: string[] = [];
  stopListening = onStopSignals({
    stop: (signal) => calls.push(`stop ${signal}`),
    force: (signal) => calls.push(`force ${signal}`),
  });
  return calls;
}

describe('onStopSignals', () => {
  it('takes the same signal again within the window as the same request (terminal and npm)', () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const calls = listen();
    process.emit('SIGINT', 'SIGINT');
    process.emit('SIGINT', 'SIGINT');
    vi.advanceTimersByTime(REPEATED_SIGNAL_WINDOW_MS - 1);
    process.emit('SIGINT', 'SIGINT');
    expect(calls).toEqual(['stop SIGINT']);
    vi.advanceTimersByTime(1);
    process.emit('SIGINT', 'SIGINT');
    expect(calls).toEqual(['stop SIGINT', 'force SIGINT']);
  });

  it('takes another signal as a second one at once', () => {
    const calls = listen();
    process.emit('SIGTERM', 'SIGTERM');
    process.emit('SIGINT', 'SIGINT');
    expect(calls).toEqual(['stop SIGTERM', 'force SIGINT']);
  });

  it('stops listening when asked', () => {
    const calls = listen();
    stopListening?.();
    stopListening = undefined;
    // Another listener keeps vitest's process from taking the signal's default action.
    const keep = () => {};
    process.on('SIGTERM', keep);
    process.emit('SIGTERM', 'SIGTERM');
    process.off('SIGTERM', keep);
    expect(calls).toEqual([]);
  });
});
