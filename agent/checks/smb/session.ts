// One smbclient process driven command by command over stdin.
//
// smbclient prints no prompt over a pipe, so each command is followed by
// `lcd /dev/null/<token>-<n>`: a local chdir that cannot succeed, makes no
// SMB round trip, and prints `chdir to /dev/null/<token>-<n> failed` strictly
// after the command before it finished. A command's time is from writing it
// to reading that line, so it includes the delimiter itself (~0.03 ms here,
// measured by bench/agent, figure (d)) and nothing else.
//
// `-E` sends all of smbclient's messages to stderr, so errors and success
// lines arrive in order on one stream; stdbuf makes stdin unbuffered (two
// lines in one read would otherwise hang the session) and stderr line-buffered.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";

/** smbclient's greeting when stdin is not a terminal; not part of any command's output. */
const BANNER = /^Try "help" to get a list of possible commands\.$/;

/** Lines kept from between commands; smbclient prints at most a notice or two there. */
const MAX_STRAY_LINES = 50;

export type CommandStatus = "ok" | "exited" | "timeout" | "overflow" | "aborted" | "spawn_failed";

export interface CommandOutcome {
  status: CommandStatus;
  /** Output lines of this command, delimiter excluded. */
  lines: string[];
  /** From writing the command (or spawning, for login) to its delimiter, or to the timeout. */
  elapsedMs: number;
  /** How the process ended, when status is not ok. */
  detail: string;
}

export interface SessionSpec {
  file: string;
  args: readonly string[];
  env: Record<string, string>;
  maxOutputBytesPerCommand: number;
  killGraceMs: number;
}

interface Pending {
  delimiter: string;
  lines: string[];
  bytes: number;
  startedAt: number;
  /** Set when the session is being killed on this command's behalf. */
  outcome: { status: CommandStatus; elapsedMs: number; detail: string } | null;
  timer: NodeJS.Timeout | null;
  resolve: (outcome: CommandOutcome) => void;
}

export class SmbclientSession {
  readonly #spec: SessionSpec;
  readonly #token = randomBytes(6).toString("hex");
  readonly #child: ChildProcess;
  readonly #closed: Promise<void>;
  #counter = 0;
  #partial = "";
  /** Lines that arrived while no command ran (e.g. a disconnect notice), kept for the next outcome. */
  #stray: string[] = [];
  #pending: Pending | null = null;
  #login: Promise<CommandOutcome>;
  #isClosed = false;
  #exitDetail = "";
  #killTimer: NodeJS.Timeout | null = null;
  #terminating = false;
  #abortReason: string | null = null;
  readonly #signal: AbortSignal;
  readonly #onAbort = () => this.#abort();

  /**
   * Spawns smbclient and queues the first delimiter at once: its answer comes
   * after connect, negotiate, session setup and tree connect, so `login` is
   * measured from spawn and includes smbclient's start-up (~25 ms of process
   * start on these machines; see FACTS.md).
   */
  constructor(spec: SessionSpec, loginTimeoutMs: number, signal: AbortSignal) {
    this.#spec = spec;
    this.#signal = signal;
    const startedAt = performance.now();
    // detached: smbclient leads its own process group, so a kill reaches anything it starts.
    this.#child = spawn(spec.file, spec.args, {
      detached: true,
      env: spec.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.#closed = new Promise((resolve) => {
      this.#child.once("close", (code, sig) => {
        this.#exitDetail = sig !== null ? `smbclient killed by ${sig}` : `smbclient exited with code ${code}`;
        this.#onClosed();
        resolve();
      });
      this.#child.once("error", (err) => {
        // A spawn failure emits no 'close' when the process never started.
        if (this.#child.pid === undefined) {
          this.#exitDetail = `could not start ${spec.file}: ${err.message}`;
          this.#onClosed("spawn_failed");
          resolve();
        }
      });
    });
    // EPIPE when smbclient has exited (bad password): its output says why.
    this.#child.stdin!.on("error", () => {});
    this.#child.stdout!.setEncoding("utf8").on("data", (d: string) => this.#onData(d));
    this.#child.stderr!.setEncoding("utf8").on("data", (d: string) => this.#onData(d));
    if (signal.aborted) this.#abort();
    else signal.addEventListener("abort", this.#onAbort, { once: true });
    this.#login = this.#send(null, loginTimeoutMs, startedAt);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** The outcome of connect + login (the first delimiter). */
  login(): Promise<CommandOutcome> {
    return this.#login;
  }

  /** Runs one command; its time is measured from the write to its delimiter. Commands never overlap. */
  exec(command: string, timeoutMs: number): Promise<CommandOutcome> {
    if (this.#pending !== null) throw new Error("SmbclientSession.exec: a command is already running");
    return this.#send(command, timeoutMs, null);
  }

  /** Ends the session: EOF on stdin (smbclient logs off and exits), killed if it takes longer than waitMs. */
  async quit(waitMs: number): Promise<void> {
    if (this.#isClosed) return;
    this.#child.stdin!.end();
    const timer = setTimeout(() => this.#terminate(), Math.max(0, waitMs));
    await this.#closed;
    clearTimeout(timer);
  }

  /** Kills the process group and waits until smbclient is gone. */
  async kill(): Promise<void> {
    this.#terminate();
    await this.#closed;
  }

  #send(command: string | null, timeoutMs: number, startedAt: number | null): Promise<CommandOutcome> {
    const delimiter = `/dev/null/${this.#token}-${this.#counter++}`;
    return new Promise<CommandOutcome>((resolve) => {
      const pending: Pending = {
        delimiter: `chdir to ${delimiter} failed`,
        lines: [],
        bytes: 0,
        startedAt: 0,
        outcome: null,
        timer: null,
        resolve,
      };
      this.#pending = pending;
      pending.lines.push(...this.#stray.splice(0));
      if (this.#isClosed || this.#abortReason !== null) {
        this.#settle(
          pending,
          this.#abortReason !== null ? "aborted" : "exited",
          0,
          this.#abortReason ?? this.#exitDetail,
        );
        return;
      }
      pending.timer = setTimeout(
        () => this.#fail(pending, "timeout", `no answer within ${timeoutMs} ms`),
        timeoutMs,
      );
      const text = command === null ? `lcd ${delimiter}\n` : `${command}\nlcd ${delimiter}\n`;
      pending.startedAt = startedAt ?? performance.now();
      this.#child.stdin!.write(text);
    });
  }

  #onData(data: string): void {
    const pending = this.#pending;
    if (pending !== null && pending.outcome === null) {
      pending.bytes += Buffer.byteLength(data);
      if (pending.bytes > this.#spec.maxOutputBytesPerCommand) {
        this.#fail(pending, "overflow", `more than ${this.#spec.maxOutputBytesPerCommand} bytes of output`);
        return;
      }
    }
    this.#partial += data;
    let nl: number;
    while ((nl = this.#partial.indexOf("\n")) >= 0) {
      const line = this.#partial.slice(0, nl).replace(/\r$/, "");
      this.#partial = this.#partial.slice(nl + 1);
      this.#onLine(line);
    }
    // Output between commands (none is expected) is bounded too.
    if (this.#partial.length > this.#spec.maxOutputBytesPerCommand) {
      this.#partial = "";
      this.#terminate();
    }
  }

  #onLine(line: string): void {
    const pending = this.#pending;
    if (pending === null) {
      if (!BANNER.test(line) && this.#stray.length < MAX_STRAY_LINES) this.#stray.push(line);
      return;
    }
    if (pending.outcome !== null) return;
    if (line.startsWith(pending.delimiter)) {
      this.#settle(pending, "ok", performance.now() - pending.startedAt, "");
    } else if (!BANNER.test(line)) {
      pending.lines.push(line);
    }
  }

  /** Marks the running command failed and kills the process; it settles when smbclient is gone. */
  #fail(pending: Pending, status: CommandStatus, detail: string): void {
    if (pending.outcome !== null) return;
    pending.outcome = { status, elapsedMs: performance.now() - pending.startedAt, detail };
    this.#terminate();
  }

  #settle(pending: Pending, status: CommandStatus, elapsedMs: number, detail: string): void {
    if (pending.timer !== null) clearTimeout(pending.timer);
    if (this.#pending === pending) this.#pending = null;
    pending.resolve({ status, lines: pending.lines, elapsedMs, detail });
  }

  #onClosed(status: CommandStatus = "exited"): void {
    this.#isClosed = true;
    if (this.#killTimer !== null) clearTimeout(this.#killTimer);
    this.#signal.removeEventListener("abort", this.#onAbort);
    if (this.#partial.length > 0) this.#onLine(this.#partial);
    this.#partial = "";
    const pending = this.#pending;
    if (pending === null) return;
    const o = pending.outcome;
    if (o !== null) this.#settle(pending, o.status, o.elapsedMs, o.detail);
    else this.#settle(pending, status, performance.now() - pending.startedAt, this.#exitDetail);
  }

  #abort(): void {
    this.#abortReason = `run aborted (${String(this.#signal.reason ?? "signal")})`;
    const pending = this.#pending;
    if (pending !== null) this.#fail(pending, "aborted", this.#abortReason);
    else this.#terminate();
  }

  /** SIGTERM to smbclient's process group, SIGKILL after the grace period. */
  #terminate(): void {
    if (this.#terminating || this.#isClosed) return;
    this.#terminating = true;
    const pid = this.#child.pid;
    if (pid === undefined) return;
    signalGroup(pid, "SIGTERM");
    this.#killTimer = setTimeout(() => signalGroup(pid, "SIGKILL"), this.#spec.killGraceMs);
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: already gone.
  }
}
