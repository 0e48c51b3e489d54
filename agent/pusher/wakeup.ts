// A level-triggered wake-up for the sender loop: notify() before wait() is not
// lost (the next wait returns at once), so an append that lands between the
// loop's empty read and its wait still gets sent without waiting for a timer.

export class Wakeup {
  #pending = false;
  #resolve: (() => void) | null = null;
  #timer: NodeJS.Timeout | null = null;

  notify(): void {
    if (this.#resolve === null) {
      this.#pending = true;
      return;
    }
    this.#fire();
  }

  /** Resolves on the next notify(), at once if one came since the last wait, or after timeoutMs. */
  wait(timeoutMs?: number): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    if (this.#resolve !== null) throw new Error("Wakeup has a single waiter");
    return new Promise((resolve) => {
      this.#resolve = resolve;
      if (timeoutMs !== undefined) this.#timer = setTimeout(() => this.#fire(), Math.max(0, timeoutMs));
    });
  }

  #fire(): void {
    const resolve = this.#resolve;
    this.#resolve = null;
    this.#pending = false;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    resolve?.();
  }
}
