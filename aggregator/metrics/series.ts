// Metric families for the per-result hot path. prom-client's labelled
// children re-validate and re-hash their labels on every observe (~1.3 µs
// here); at tens of thousands of results per second with a dozen samples
// each that is a core of CPU. These families hand out a series object once per
// label set, and observe/inc on it is plain arithmetic. They plug into a
// prom-client Registry (registerMetric) and render through it, so /metrics
// looks exactly as with prom-client's own classes (metrics.test.ts pins it).
import type { Metric, Registry } from "prom-client";
import type { RenderBudget } from "./render-budget.ts";

type Labels = Record<string, string>;
type MetricValue = { value: number; labels: Labels; metricName?: string };
type MetricType = "counter" | "gauge" | "histogram";

abstract class Family<S> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: MetricType;
  readonly aggregator = "sum";
  readonly labelNames: readonly string[];
  protected readonly series = new Map<string, Entry<S>>();
  readonly #budget: RenderBudget | null;

  constructor(opts: FamilyOptions) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames;
    this.#budget = opts.budget ?? null;
    // The registry only needs name + get(); prom-client's Metric type is its
    // own class union, hence the cast.
    opts.registry.registerMetric(this as unknown as Metric);
  }

  protected abstract create(): S;

  /** Exposition lines one series renders (a histogram: its buckets, +Inf, sum and count). */
  protected lines(): number {
    return 1;
  }

  #key(labels: Labels): string {
    return this.labelNames
      .map((n) => {
        const v = labels[n];
        if (v === undefined) throw new Error(`${this.name}: label ${n} missing`);
        return v;
      })
      .join("\u0000");
  }

  /** The series for these label values; keep it and reuse it. */
  with(labels: Labels): S {
    const key = this.#key(labels);
    let entry = this.series.get(key);
    if (entry === undefined) {
      const own: Labels = {};
      let labelBytes = 0;
      for (const n of this.labelNames) {
        own[n] = labels[n]!;
        labelBytes += n.length + escapedBytes(labels[n]!) + 4; // name="value",
      }
      entry = {
        labels: own,
        s: this.create(),
        cost: this.lines() * (this.name.length + labelBytes + LINE_OVERHEAD),
        owner: `${labels["site"] ?? ""}/${labels["agent"] ?? ""}`,
      };
      this.series.set(key, entry);
    }
    return entry.s;
  }

  /** Forgets the series for these label values (a target gone stale). */
  remove(labels: Labels): void {
    this.series.delete(this.#key(labels));
  }

  /** Series held, rendered or not. */
  get size(): number {
    return this.series.size;
  }

  reset(): void {
    this.series.clear();
  }

  /** The entries this render may carry: all of them, or those within the budget. */
  protected rendered(): Iterable<Entry<S>> {
    const budget = this.#budget;
    if (budget === null) return this.series.values();
    const out: Entry<S>[] = [];
    for (const e of this.series.values()) if (budget.admit(e.owner, e.cost)) out.push(e);
    return out;
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

/**
 * Bytes of a line besides its name and labels, at most: a suffix (_bucket 7),
 * the le label of a bucket (,le="0.0075" 12), braces 2, a space, the value
 * (a double prints in at most 24 characters) and the newline.
 */
const LINE_OVERHEAD = 48;

/** A label value's bytes in the exposition: UTF-8, with \\, \" and \n escaped (prom-client escapeLabelValue). */
function escapedBytes(value: string): number {
  let escapes = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x5c || c === 0x22 || c === 0x0a) escapes++;
  }
  return Buffer.byteLength(value) + escapes;
}

interface Entry<S> {
  labels: Labels;
  s: S;
  /** Bytes its lines take in the exposition, estimated from names and labels (escapes aside). */
  cost: number;
  /** "site/agent": whose budget it counts against. */
  owner: string;
}

interface FamilyOptions {
  name: string;
  help: string;
  labelNames: readonly string[];
  registry: Registry;
  /** Series a render may leave out when over budget (render-budget.ts); none when absent. */
  budget?: RenderBudget;
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
    return [...this.rendered()].map(({ labels, s }) => ({ labels, value: s.value }));
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
    return [...this.rendered()].map(({ labels, s }) => ({ labels, value: s.value }));
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

  constructor(opts: FamilyOptions & { buckets: readonly number[] }) {
    super(opts);
    this.buckets = [...opts.buckets].sort((a, b) => a - b);
  }

  protected create(): HistogramSeries {
    return new HistogramSeries(this.buckets);
  }

  protected override lines(): number {
    return this.buckets.length + 3;
  }

  protected values(): MetricValue[] {
    const out: MetricValue[] = [];
    for (const { labels, s } of this.rendered()) {
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
