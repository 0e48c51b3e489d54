// One line per figure a benchmark judges: the figure, its baseline from the
// same run, the ratio, the goal and whether the goal holds. Each benchmark
// collects these as it goes and prints them together at the end, so the
// verdicts can be read (and copied) without hunting through the log.

export interface Verdict {
  figure: string;
  /** With its unit, e.g. "5.01 ms". */
  value: string;
  /** The same run's baseline, with its unit; "-" when the figure has none. */
  baseline: string;
  ratio: string;
  goal: string;
  holds: boolean;
}

export class Verdicts {
  readonly #all: Verdict[] = [];

  add(v: Verdict): Verdict {
    this.#all.push(v);
    return v;
  }

  get all(): readonly Verdict[] {
    return this.#all;
  }

  /** True when every goal held. */
  allHold(): boolean {
    return this.#all.every((v) => v.holds);
  }

  print(title = "verdicts"): void {
    console.log(`\n## ${title}`);
    const rows = this.#all.map((v) => [
      v.figure,
      v.value,
      v.baseline,
      v.ratio,
      v.goal,
      v.holds ? "holds" : "DOES NOT HOLD",
    ]);
    const header = ["figure", "value", "baseline (same run)", "ratio", "goal", "verdict"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
    console.log(line(header));
    console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
    for (const r of rows) console.log(line(r));
  }
}
