// The human form of probe results, for `smbfleet probe` and the demo: one
// block per target with its per-operation table and a status line.
import { median, percentile, type ProbeResult } from "../shared/result.ts";

const HEADER = ["op", "samples", "median ms", "p95 ms", "failures"] as const;

function ms(value: number | null): string {
  return value === null ? "-" : value.toFixed(2);
}

/** `healthy`, or `UNHEALTHY: <class>: <message>` (latency alone: `UNHEALTHY: latency: ...`). */
export function statusLine(r: ProbeResult): string {
  if (r.healthy) return "healthy";
  if (r.failureClass !== null) {
    const message = (r.failureMessage ?? "").trim();
    return `UNHEALTHY: ${r.failureClass}${message === "" ? "" : `: ${message}`}`;
  }
  if (r.aboveThreshold.length > 0) {
    return `UNHEALTHY: latency: median above threshold for ${r.aboveThreshold.join(", ")}`;
  }
  return "UNHEALTHY";
}

export function formatTarget(r: ProbeResult): string {
  const t = r.target;
  const rows: string[][] = r.operations.map((op) => [
    op.operation + (r.aboveThreshold.includes(op.operation) ? " (slow)" : ""),
    String(op.samplesMs.length),
    ms(median(op.samplesMs)),
    ms(percentile(op.samplesMs, 95)),
    String(op.failures),
  ]);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  // The op column is left-aligned, numbers right-aligned.
  const line = (cells: readonly string[]): string =>
    "  " + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const heading = `${t.name}  //${t.address}:${t.port}/${t.share}${t.basedir === "." ? "" : `/${t.basedir}`}  (${r.durationMs.toFixed(0)} ms)`;
  const table = rows.length === 0 ? ["  (no operation ran)"] : [line(HEADER), ...rows.map(line)];
  return [heading, ...table, `  status: ${statusLine(r)}`, ""].join("\n");
}

export function formatReport(results: readonly ProbeResult[]): string {
  const unhealthy = results.filter((r) => !r.healthy).length;
  const summary =
    `${results.length} ${results.length === 1 ? "target" : "targets"}: ` +
    `${results.length - unhealthy} healthy, ${unhealthy} UNHEALTHY\n`;
  return results.map(formatTarget).join("\n") + "\n" + summary;
}
