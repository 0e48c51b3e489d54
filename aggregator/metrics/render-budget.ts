// How much of the target series one /metrics render may carry, in all and
// per agent. prom-client renders the whole exposition as one string; past
// V8's longest string (2^29 − 24 units) the render throws and /metrics
// answers 500 for every site. Series past the budget are left out of that
// render and counted (smbfleet_metrics_omitted_series{site,agent}), so one
// agent's series can crowd out at most its own.
//
// A render is one synchronous pass: prom-client calls every metric's get()
// before it awaits anything, and the families compute their values inside
// get(). So begin() before registry.metrics() and end() right after the call
// (not after its promise) bracket exactly one render's admissions, even when
// two scrapes overlap (aggregator-metrics.test.ts pins it).

export class RenderBudget {
  #maxBytes: number;
  #maxBytesPerAgent: number;
  #active = false;
  #spent = 0;
  readonly #perAgent = new Map<string, number>();
  /** Series left out of the last render, by "site/agent". */
  readonly omitted = new Map<string, number>();

  constructor(maxBytes: number, maxBytesPerAgent: number) {
    this.#maxBytes = maxBytes;
    this.#maxBytesPerAgent = maxBytesPerAgent;
  }

  /** The metrics' families hold this object from their creation; their owner sets the limits after. */
  setLimits(maxBytes: number, maxBytesPerAgent: number): void {
    this.#maxBytes = maxBytes;
    this.#maxBytesPerAgent = maxBytesPerAgent;
  }

  begin(): void {
    this.#active = true;
    this.#spent = 0;
    this.#perAgent.clear();
    this.omitted.clear();
  }

  end(): void {
    this.#active = false;
  }

  /** May a series of `owner` costing `bytes` be rendered? Outside begin()/end() everything may. */
  admit(owner: string, bytes: number): boolean {
    if (!this.#active) return true;
    const mine = this.#perAgent.get(owner) ?? 0;
    if (this.#spent + bytes > this.#maxBytes || mine + bytes > this.#maxBytesPerAgent) {
      this.omitted.set(owner, (this.omitted.get(owner) ?? 0) + 1);
      return false;
    }
    this.#spent += bytes;
    this.#perAgent.set(owner, mine + bytes);
    return true;
  }
}
