// Collects one run's samples and failures and turns them into a ProbeResult
// by smbprobe's rule: healthy only if nothing failed and no operation's
// median is above its threshold.
import type { ProbeTarget } from "../../../shared/config/types.ts";
import { targetRefOf } from "../../../shared/config/target-ref.ts";
import {
  median,
  type FailureClass,
  type Operation,
  type OperationStats,
  type ProbeResult,
} from "../../../shared/result.ts";

export class RunRecorder {
  readonly #ops = new Map<Operation, OperationStats>();
  #failure: { failureClass: FailureClass; message: string } | null = null;

  /** One successful attempt of op that took ms. */
  sample(op: Operation, ms: number): void {
    this.#stats(op).samplesMs.push(ms);
  }

  /** One failed attempt of op. The run's failure class and message are those of its first failure. */
  failure(op: Operation | null, failureClass: FailureClass, message: string): void {
    if (op !== null) this.#stats(op).failures++;
    this.#failure ??= { failureClass, message };
  }

  get failed(): boolean {
    return this.#failure !== null;
  }

  result(target: ProbeTarget, startedAtMs: number, durationMs: number): ProbeResult {
    // Operations appear in the order they were first attempted; only attempted ones appear.
    const operations = [...this.#ops.values()];
    const aboveThreshold = operations
      .filter((o) => {
        const m = median(o.samplesMs);
        return m !== null && m > target.latencyThresholdsMs[o.operation];
      })
      .map((o) => o.operation);
    return {
      target: targetRefOf(target),
      startedAtMs,
      durationMs,
      operations,
      failureClass: this.#failure?.failureClass ?? null,
      failureMessage: this.#failure?.message ?? null,
      healthy: this.#failure === null && aboveThreshold.length === 0,
      aboveThreshold,
    };
  }

  #stats(op: Operation): OperationStats {
    let stats = this.#ops.get(op);
    if (stats === undefined) {
      stats = { operation: op, samplesMs: [], failures: 0 };
      this.#ops.set(op, stats);
    }
    return stats;
  }
}
