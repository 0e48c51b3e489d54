// Runs one smbclient command as one attempt of an operation: bounds it by the
// operation and run timeouts, records its sample or its classified failure.
import type { FailureClass, Operation } from "../../../shared/result.ts";
import { classify, isErrorLine } from "./classify.ts";
import type { RunRecorder } from "./recorder.ts";
import type { CommandOutcome, SmbclientSession } from "./session.ts";

/** Thrown to end the sequence when the session is gone (timeout, crash, abort); the failure is already recorded. */
export class SessionEnded extends Error {
  constructor() {
    super("smbclient session ended");
    this.name = "SessionEnded";
  }
}

export interface StepOptions {
  /** A line that proves success (put/get print one); without it a command succeeds when it prints no error. */
  successLine?: RegExp;
  /** Untimed housekeeping: failures are returned but neither sampled nor recorded. */
  untimed?: boolean;
  /** Operation charged with an untimed step's failure when it must stop the run (cd into basedir → ls_dir). */
  chargeTo?: Operation;
}

export interface StepResult {
  ok: boolean;
  lines: string[];
  /** When not ok: what the recorder was (or would have been) told. */
  message: string;
}

export class Steps {
  readonly #session: SmbclientSession;
  readonly #recorder: RunRecorder;
  readonly #opTimeoutMs: number;
  readonly #runDeadline: number;
  readonly #runTimeoutMs: number;

  constructor(
    session: SmbclientSession,
    recorder: RunRecorder,
    limits: { opTimeoutMs: number; runDeadline: number; runTimeoutMs: number },
  ) {
    this.#session = session;
    this.#recorder = recorder;
    this.#opTimeoutMs = limits.opTimeoutMs;
    this.#runDeadline = limits.runDeadline;
    this.#runTimeoutMs = limits.runTimeoutMs;
  }

  /** Time left for the next command: the operation timeout, or less if the run's end is nearer. */
  get timeoutMs(): number {
    return Math.max(0, Math.min(this.#opTimeoutMs, this.#runDeadline - performance.now()));
  }

  /** Judges connect + login; loginTimeoutMs is what the session was started with. */
  async login(loginTimeoutMs: number): Promise<void> {
    const outcome = await this.#session.login();
    this.#judge("login", outcome, {}, loginTimeoutMs < this.#opTimeoutMs);
  }

  async run(op: Operation, command: string, opts: StepOptions = {}): Promise<StepResult> {
    const timeoutMs = this.timeoutMs;
    const runBound = timeoutMs < this.#opTimeoutMs;
    const outcome = await this.#session.exec(command, timeoutMs);
    return this.#judge(op, outcome, opts, runBound);
  }

  /** A sample measured locally, not by a command (integrity). */
  recordSample(op: Operation, ms: number): void {
    this.#recorder.sample(op, ms);
  }

  recordFailure(op: Operation, failureClass: FailureClass, message: string): void {
    this.#recorder.failure(op, failureClass, message);
  }

  #judge(op: Operation, outcome: CommandOutcome, opts: StepOptions, runBound: boolean): StepResult {
    const record = (failureClass: FailureClass, message: string) => {
      if (!opts.untimed) this.#recorder.failure(op, failureClass, message);
      else if (opts.chargeTo !== undefined) this.#recorder.failure(opts.chargeTo, failureClass, message);
    };
    switch (outcome.status) {
      case "ok": {
        const errors = outcome.lines.filter(isErrorLine);
        const confirmed =
          opts.successLine === undefined || outcome.lines.some((l) => opts.successLine!.test(l));
        if (errors.length === 0 && confirmed) {
          if (!opts.untimed) this.#recorder.sample(op, outcome.elapsedMs);
          return { ok: true, lines: outcome.lines, message: "" };
        }
        const c = classify(errors.length > 0 ? errors : outcome.lines);
        const message = c.message.length > 0 ? c.message : `${op}: smbclient printed no confirmation`;
        record(c.failureClass, message);
        return { ok: false, lines: outcome.lines, message };
      }
      case "timeout": {
        const message = runBound
          ? `${op}: run timeout of ${this.#runTimeoutMs / 1000} s reached; smbclient killed`
          : `${op}: no answer within ${this.#opTimeoutMs / 1000} s; smbclient killed`;
        this.#recorder.failure(opts.chargeTo ?? op, "timeout", message);
        throw new SessionEnded();
      }
      case "overflow":
      case "aborted":
      case "spawn_failed":
        this.#recorder.failure(opts.chargeTo ?? op, "internal", `${op}: ${outcome.detail}`);
        throw new SessionEnded();
      case "exited": {
        // smbclient ended on its own: its last words say why (bad password, refused connection...).
        const c = classify(outcome.lines);
        const failureClass = c.message.length > 0 ? c.failureClass : "internal";
        this.#recorder.failure(
          opts.chargeTo ?? op,
          failureClass,
          c.message.length > 0 ? c.message : outcome.detail,
        );
        throw new SessionEnded();
      }
    }
  }
}
