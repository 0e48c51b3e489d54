// The loaded, validated shape of agent.toml (a superset of smbprobe's
// probe.toml). Loading lives in shared/config/agent.ts; defaults live in
// shared/config/defaults.ts, each with its reason.
import type { Operation } from "../result.ts";
import type { Secret } from "../secret.ts";

export interface ListenAddress {
  host: string;
  port: number;
}

/** One problem found while loading a config file: where, which key, what. */
export interface ConfigProblem {
  file: string;
  /** 1-based line of the key (or of its table), 0 when the file as a whole is at fault. */
  line: number;
  /** Dotted key path as an operator reads it, e.g. probes[1].share. */
  key: string;
  message: string;
  severity: "error" | "warning";
}

export interface BufferLimits {
  /** Oldest results are dropped (and counted) beyond this many bytes of buffered results. */
  maxBytes: number;
  /** Results older than this are dropped (and counted) unsent. */
  maxAgeSeconds: number;
}

export interface AgentSection {
  site: string | null;
  id: string | null;
  bufferPath: string;
  httpListen: ListenAddress;
  /** Most probe runs in flight at once across all targets. */
  maxConcurrentRuns: number;
  /** Most smbclient processes started per second. */
  maxSpawnsPerSecond: number;
  buffer: BufferLimits;
}

export interface AggregatorSection {
  /** host:port of the aggregator's gRPC listener. */
  url: string;
  ca: string | null;
  cert: string | null;
  key: string | null;
  /** Plain-text gRPC, only for loopback demos. */
  insecure: boolean;
}

export interface ProbeTarget {
  /** Display name; defaults to address/share when smbprobe's empty name is given. */
  name: string;
  address: string;
  port: number;
  domain: string;
  share: string;
  username: string;
  password: Secret;
  /** Directory inside the share where test files are written (smbprobe's remote_basedir). */
  remoteBasedir: string;
  /** Fixed rate: a run starts every interval seconds (not interval seconds after the last one ended). */
  intervalSeconds: number;
  /** Whole-run timeout, seconds; the smbclient process is killed when it passes. */
  timeoutSeconds: number;
  /** Per-operation timeout, seconds. */
  operationTimeoutSeconds: number;
  /** Median latency above which an operation makes the run unhealthy, milliseconds. */
  latencyThresholdsMs: Record<Operation, number>;
  auth: "ntlm" | "kerberos";
  /** smbclient --option='client min protocol=...' floor, e.g. SMB2, SMB3; null leaves smbclient's default. */
  protocol: string | null;
  labels: Record<string, string>;
  /** How many test files per run and their size (smbprobe: 5 × 4096). */
  fileCount: number;
  fileSizeBytes: number;
  /** Opt-in extra operations. */
  rename: boolean;
  mkdir: boolean;
  /** 1-based line of this [[probes]] block in its file, for messages. */
  line: number;
}

export interface AgentConfig {
  /** Absolute path of the file this was loaded from. */
  file: string;
  agent: AgentSection;
  aggregator: AggregatorSection | null;
  probes: ProbeTarget[];
  /** [http_auth]: credentials for /metrics and /readyz; null (or absent) = none. */
  httpAuth?: HttpAuth | null;
  /** Warnings found while loading (the config is still usable). */
  warnings: ConfigProblem[];
}

/**
 * Who may read a role's HTTP endpoints ([http_auth], shared/config/http-auth.ts):
 * either a bearer token or basic auth, or both; everything but /healthz asks.
 */
export interface HttpAuth {
  bearerToken: Secret | null;
  basic: { user: string; password: Secret } | null;
}

/** aggregator.toml, loaded by shared/config/aggregator.ts. */
export interface AggregatorConfig {
  file: string;
  server: {
    grpcListen: ListenAddress;
    httpListen: ListenAddress;
    /** Plain-text gRPC, only for loopback demos; mTLS otherwise. */
    insecure: boolean;
    /** Larger messages are rejected in-band (RESOURCE_EXHAUSTED). */
    maxMessageBytes: number;
  };
  tls: {
    ca: string;
    cert: string;
    key: string;
    /** The revocation list (revoked.json); a missing file revokes nothing. */
    revoked: string;
  } | null;
  database: { url: Secret; poolSize: number };
  redis: { url: Secret } | null;
  ingest: {
    /** Per-agent limit; above it batches are refused in-band with RESOURCE_EXHAUSTED until the bucket refills. */
    maxResultsPerSecondPerAgent: number;
    /** A result stamped further in the future than this is rejected (INVALID_ARGUMENT). */
    maxFutureSkewSeconds: number;
    /** Agent clocks further off than this are warned about. */
    clockSkewWarnSeconds: number;
    /** A result older than this on arrival is stored with late = true. */
    lateAfterSeconds: number;
  };
  /** [limits]: what one agent may cost the aggregator (defaults.ts LIMITS_DEFAULTS says why each). */
  limits: {
    maxStreamsPerAgent: number;
    maxStreamsPerConnection: number;
    helloTimeoutSeconds: number;
    connectionIdleSeconds: number;
    maxConnectionAgeSeconds: number;
    connectionAgeGraceSeconds: number;
    hellosPerMinute: number;
    heartbeatsPerMinute: number;
    batchesPerSecond: number;
    maxTargetsPerAgent: number;
    newTargetsPerMinute: number;
    metricsStaleAfterSeconds: number;
    maxMetricsBytes: number;
    maxMetricsBytesPerAgent: number;
    logLinesPerMinute: number;
  };
  retention: {
    /** Raw results partitions older than this are dropped. */
    rawDays: number;
    /** 5-minute rollups older than this are deleted. */
    rollupDays: number;
  };
  agents: {
    /** Agent ids refused at connect, in addition to agents disabled in the database. */
    disabled: string[];
  };
  incidents: {
    consecutiveFailures: number;
  };
  /** null: the HTTP endpoints answer anyone who can reach http_listen. */
  httpAuth: HttpAuth | null;
  warnings: ConfigProblem[];
}

export type NotificationTarget = "pager-duty" | "better-stack" | "msft-teams" | "generic-post" | "email";

/** One [[notifications]] block: smbprobe's keys plus email and routing filters. */
export interface NotificationDestination {
  target: NotificationTarget;
  url: string | null;
  integrationKey: Secret | null;
  headers: Record<string, string>;
  severity: string | null;
  sourceEmail: string | null;
  summary: string | null;
  smtp: {
    host: string;
    port: number;
    from: string;
    to: string[];
    username: string | null;
    password: Secret | null;
    tls: boolean;
  } | null;
  /** Routing filters; empty = all. */
  sites: string[];
  kinds: string[];
  line: number;
}

/** notifier.toml, loaded by shared/config/notifier.ts. */
export interface NotifierConfig {
  file: string;
  httpListen: ListenAddress;
  redis: { url: Secret };
  notifications: NotificationDestination[];
  warnings: ConfigProblem[];
}
