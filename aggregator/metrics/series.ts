// Metric families for the per-result hot path. prom-client's labelled
// children re-validate and re-hash their labels on every observe (~1.3 µs
// here); at tens of thousands of results per second with a dozen samples
// each that is a core of CPU. These families hand out a series object once per
// label set, and observe/inc on it is plain arithmetic. They plug into a
// prom-client Registry (registerMetric) and render through it, so /metrics
// looks exactly as with prom-client's own classes (metrics.test.ts pins it).
import type { Metric, Registry } from "prom-client";

type Labels = Record<string, string>;
type MetricValue = { value: number; labels: Labels; metricName?: string };
type MetricType = "counter" | "gauge" | "histogram";

abstract class Family<S> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: MetricType;
  readonly aggregator = "sum";
  readonly labelNames: readonly string[];
  protected readonly series = new Map<string, { labels: Labels; s: S }>();

  constructor(opts: { name: string; help: string; labelNames: readonly string[]; registry: Registry }) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames;
    // The registry only needs name + get(); prom-client's Metric type is its
    // own class union, hence the cast.
    opts.registry.registerMetric(this as unknown as Metric);
  }

  protected abstract create(): S;

  /** The series for these label values; keep it and reuse it. */
  with(labels: Labels): S {
    const values = this.labelNames.map((n) => {
      const v = labels[n];
      if (v === undefined) throw new Error(`${this.name}: label ${n} missing`);
      return v;
    });
    const key = values.join("\u0000");
    let entry = this.series.get(key);
    if (entry === undefined) {
      const own: Labels = {};
      this.labelNames.forEach((n, i) => (own[n] = values[i]!));
      entry = { labels: own, s: this.create() };
      this.series.set(key, entry);
    }
    return entry.s;
  }

  reset(): void {
    this.series.clear();
  }

  protected abstract values(): MetricValue[];

  get(): Promise<{
    name: string;
    help: string;
    type: MetricType;
    aggregator: string;
    values: MetricValue[];
  }> {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.values(),
    });
  }
}

export interface CounterSeries {
  value: number;
}

export class CounterFamily extends Family<CounterSeries> {
  readonly type = "counter";
  protected create(): CounterSeries {
    return { value: 0 };
  }
  protected values(): MetricValue[] {
    return [...this.series.values()].map(({ labels, s }) => ({ labels, value: s.value }));
  }
}

export interface GaugeSeries {
  value: number;
}

export class GaugeFamily extends Family<GaugeSeries> {
  readonly type = "gauge";
  protected create(): GaugeSeries {
    return { value: 0 };
  }
  protected values(): MetricValue[] {
    return [...this.series.values()].map(({ labels, s }) => ({ labels, value: s.value }));
  }
}

export class HistogramSeries {
  readonly #bounds: readonly number[];
  /** counts[i] = observations in (bounds[i-1], bounds[i]]; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const b = this.#bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]! += 1;
    this.sum += value;
    this.count += 1;
  }
}

export class HistogramFamily extends Family<HistogramSeries> {
  readonly type = "histogram";
  readonly buckets: readonly number[];

  constructor(opts: {
    name: string;
    help: string;
    labelNames: readonly string[];
    buckets: readonly number[];
    registry: Registry;
  }) {
    super(opts);
    this.buckets = [...opts.buckets].sort((a, b) => a - b);
  }

  protected create(): HistogramSeries {
    return new HistogramSeries(this.buckets);
  }

  protected values(): MetricValue[] {
    const out: MetricValue[] = [];
    for (const { labels, s } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i]!;
        out.push({
          metricName: `${this.name}_bucket`,
          labels: { ...labels, le: String(le) },
          value: cumulative,
        });
      });
      out.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: "+Inf" }, value: s.count });
      out.push({ metricName: `${this.name}_sum`, labels, value: s.sum });
      out.push({ metricName: `${this.name}_count`, labels, value: s.count });
    }
    return out;
  }
}
