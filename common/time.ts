/** The one sleep and the one wake-up primitive of the platform. */

/**
 * Resolves after `ms`. `unref` lets the process exit meanwhile (a retry's backoff must not hold up a
 * shutdown); by default the timer keeps the process alive like any awaited work.
 */
export function sleep(ms: number, options: { unref?: boolean } = {}): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (options.unref) timer.unref();
  });
}

/** A sleep that another caller can cut short: a stop, or new work arriving for a polling loop. */
export class Wakeable {
  private wakeUp: (() => void) | undefined;
  /** A wake() that came while nobody slept: the next sleep returns at once, so no wake-up is lost. */
  private pending = false;

  /** Resolves after `ms`, or as soon as {@link wake} is called (or was called since the last sleep). */
  sleep(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wakeUp === done) this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  /** Ends the current sleep, or the next one if nobody sleeps now. */
  wake(): void {
    if (this.wakeUp) this.wakeUp();
    else this.pending = true;
  }
}
