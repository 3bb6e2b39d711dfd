/** A sleep that another caller can cut short: a stop, or new work arriving for a polling loop. */
export class Wakeable {
  private wakeUp: (() => void) | undefined;

  /** Resolves after `ms`, or as soon as {@link wake} is called. */
  sleep(ms: number): Promise<void> {
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

  /** Ends the current sleep, if any. */
  wake(): void {
    this.wakeUp?.();
  }
}
