// What the agent and the aggregator logged at warn or above during a drain,
// counted by message: a slow drain is explained here (refusals and resends,
// reconnects), not guessed at.
import { readFileSync } from "node:fs";

/** pino's warn level. */
const WARN = 40;

type Line = Record<string, unknown> & { level?: number; msg?: string };

export function summarize(lines: readonly Line[]): string {
  const counts = new Map<string, number>();
  for (const l of lines) {
    if ((l.level ?? 0) < WARN) continue;
    const key = String(l.msg ?? "(no message)");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  if (counts.size === 0) return "none";
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([msg, n]) => `${n} × ${msg}`)
    .join("; ");
}

/** JSON log lines of a file (other lines skipped). */
export function readLogFile(file: string): Line[] {
  const out: Line[] = [];
  for (const text of readFileSync(file, "utf8").split("\n")) {
    if (!text.startsWith("{")) continue;
    try {
      out.push(JSON.parse(text) as Line);
    } catch {
      // a line cut by the stop
    }
  }
  return out;
}
