// The end of one stream, as something to wait on. A stream ends by an error,
// the server closing it, a timeout, or a stop; every wait on the stream (for
// Welcome, for 'drain') is cut short by its end or by the stop, and leaves no
// listener behind, so a stream that lives for weeks accumulates nothing.

interface Waiter {
  fire(why: "ended" | "stopped"): void;
  ignoreStop: boolean;
}

export type RaceResult = "value" | "timeout" | "ended" | "stopped";

export class StreamEnd {
  ended = false;
  /** Why it ended; null for a clean end. */
  error: unknown = null;
  readonly #stop: AbortSignal;
  readonly #onEnd: () => void;
  readonly #waiters = new Set<Waiter>();
  readonly #onStop = (): void => {
    for (const w of [...this.#waiters]) if (!w.ignoreStop) w.fire("stopped");
    this.#onEnd();
  };

  constructor(stop: AbortSignal, onEnd: () => void) {
    this.#stop = stop;
    this.#onEnd = onEnd;
    stop.addEventListener("abort", this.#onStop, { once: true });
  }

  end(err: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = err;
    for (const w of [...this.#waiters]) w.fire("ended");
    this.#onEnd();
  }

  /** Waits for `value` (null: nothing), at most timeoutMs, and no longer than the stream lives or the stop allows. */
  race(
    value: Promise<void> | null,
    timeoutMs: number,
    opts: { ignoreStop?: boolean } = {},
  ): Promise<RaceResult> {
    if (this.ended) return Promise.resolve("ended");
    const ignoreStop = opts.ignoreStop ?? false;
    if (this.#stop.aborted && !ignoreStop) return Promise.resolve("stopped");
    return new Promise((resolve) => {
      const finish = (why: RaceResult): void => {
        if (!this.#waiters.delete(waiter)) return;
        clearTimeout(timer);
        resolve(why);
      };
      const waiter: Waiter = { fire: finish, ignoreStop };
      this.#waiters.add(waiter);
      const timer = setTimeout(() => finish("timeout"), timeoutMs);
      void value?.then(() => finish("value"));
    });
  }

  /** Waits for one `event` from emitter (e.g. 'drain'), or the end of the stream, or the stop. */
  until(emitter: NodeJS.EventEmitter, event: string): Promise<void> {
    if (this.ended || this.#stop.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = (): void => {
        emitter.off(event, finish);
        this.#waiters.delete(waiter);
        resolve();
      };
      const waiter: Waiter = { fire: finish, ignoreStop: false };
      this.#waiters.add(waiter);
      emitter.on(event, finish);
    });
  }

  dispose(): void {
    this.#stop.removeEventListener("abort", this.#onStop);
    for (const w of [...this.#waiters]) w.fire("ended");
  }
}
