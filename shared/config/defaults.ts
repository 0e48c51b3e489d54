// Every default and every bound of the three config files, in one place,
// each with its reason. Loaders read these; nothing else hard-codes them.
import type { Operation } from "../result.ts";

const MiB = 1024 * 1024;
const DAY_SECONDS = 24 * 60 * 60;

export const CONFIG_LIMITS = {
  /** A config file larger than this is a mistake (a log or a binary named by accident). */
  maxFileBytes: MiB,
} as const;

export const AGENT_DEFAULTS = {
  /** DESIGN.md's agent port; /metrics, /healthz, /readyz. */
  httpListen: "0.0.0.0:9741",
  /** FHS state directory; the container images mount a volume there. */
  bufferPath: "/var/lib/smbfleet/buffer.db",
  /**
   * A result is ~0.5 KB buffered; 100 targets at a 60 s interval make ~70 MB a
   * day, so 256 MiB rides out a weekend-long WAN outage for a typical site.
   */
  bufferMaxBytes: 256 * MiB,
  /** Below this a buffer cannot bridge even a short aggregator restart for a busy site. */
  bufferMinBytes: MiB,
  /** After a week unsent results are history nobody will be paged for; raw retention is 30 days. */
  bufferMaxAgeSeconds: 7 * DAY_SECONDS,
  /**
   * Each run holds one smbclient process (~15 MB RSS), so 16 in flight bounds
   * memory near 250 MB; a loopback run takes ~50 ms, so 16 still allows ~300 runs/s.
   */
  maxConcurrentRuns: 16,
  /** A hard ceiling so a typo cannot fork-bomb the host. */
  maxConcurrentRunsCeiling: 1024,
  /** smbclient start-up costs ~25 ms CPU (FACTS.md): 20 spawns/s keep it near half a core. */
  maxSpawnsPerSecond: 20,
} as const;

export const PROBE_DEFAULTS = {
  /** SMB over TCP. */
  port: 445,
  /** smbprobe's configs always set it; "." is the share root, as smbprobe's example. */
  remoteBasedir: ".",
  domain: "",
  /** DESIGN.md's example interval; smbprobe's examples use 5 s for demos. */
  intervalSeconds: 60,
  /** Faster than once a second is load, not monitoring (and smbprobe's floor). */
  minIntervalSeconds: 1,
  /**
   * The run timeout defaults to the interval: a run still going when the next
   * one is due would delay it (one run per target at a time). Capped because
   * a 1 h interval should not leave a hung server undetected for an hour.
   */
  maxDefaultTimeoutSeconds: 300,
  /**
   * Per-operation timeout: ten times smbprobe's 1 s threshold, an operation
   * that slow is a failure already; smbclient's own connect timeout is 20 s.
   */
  operationTimeoutSeconds: 10,
  /** smbprobe's thresholds (login 2 s, others 1 s); smbfleet's extra operations use 1 s too. */
  latencyThresholdsSeconds: {
    login: 2,
    write: 1,
    ls_dir: 1,
    read: 1,
    unlink: 1,
    integrity: 1,
    rename: 1,
    mkdir: 1,
    rmdir: 1,
  } satisfies Record<Operation, number>,
  auth: "ntlm",
  /** smbprobe writes 5 files of 4 KiB per run. */
  fileCount: 5,
  fileSizeBytes: 4096,
  /** More files per run is a load test, not a probe. */
  maxFileCount: 100,
  /** A probe must not saturate a branch-office link. */
  maxFileSizeBytes: 16 * MiB,
} as const;

/** Values of smbclient's `client min protocol` that make sense as a floor. */
export const PROTOCOL_FLOORS = [
  "NT1",
  "SMB2",
  "SMB2_02",
  "SMB2_10",
  "SMB3",
  "SMB3_00",
  "SMB3_02",
  "SMB3_11",
] as const;

export const AUTH_METHODS = ["ntlm", "kerberos"] as const;

/** Label names smbfleet sets itself; a probe's own labels must not shadow them. */
export const RESERVED_LABELS = ["address", "share", "domain", "operation", "site", "agent"] as const;

/** smbprobe: an empty password falls back to this environment variable. */
export const PASSWORD_FALLBACK_ENV = "SMB_MONITOR_PROBE_PASSWORD";
/** dynaconf's variable naming the secrets file(s), comma-separated. */
export const SECRETS_FILE_ENV = "SECRETS_FOR_DYNACONF";
/** The secrets file smbprobe reads beside its config when SECRETS_FOR_DYNACONF is unset. */
export const DEFAULT_SECRETS_FILE = ".secrets.toml";

/** Connection URLs often carry a password; these keep it out of the config files. */
export const DATABASE_URL_ENV = "SMBFLEET_DATABASE_URL";
export const REDIS_URL_ENV = "SMBFLEET_REDIS_URL";
/** [http_auth] secrets from the environment, over the file. */
export const HTTP_TOKEN_ENV = "SMBFLEET_HTTP_TOKEN";
export const HTTP_PASSWORD_ENV = "SMBFLEET_HTTP_PASSWORD";
/** A bearer token shorter than this is a password someone chose, not a random token: warned about. */
export const HTTP_TOKEN_MIN_LENGTH = 16;

export const AGGREGATOR_DEFAULTS = {
  /** DESIGN.md's ports. */
  grpcListen: "0.0.0.0:9740",
  httpListen: "0.0.0.0:9742",
  /**
   * grpc-js's own default; a 1,000-result batch is ~200 KB, so 4 MiB leaves
   * room while bounding what one message can make the server allocate.
   */
  maxMessageBytes: 4 * MiB,
  /** Above 1 GiB protobuf decoding alone could exhaust the heap. */
  maxMessageBytesCeiling: 1024 * MiB,
  /** Ingest is one transaction per batch; 10 connections keep 2 cores busy without queueing in PostgreSQL. */
  databasePoolSize: 10,
  /**
   * A site of 10 targets at 10 s makes 1 result/s; 50,000/s lets an agent
   * drain a 1,000,000-result backlog in ~20 s while still bounding a flood.
   */
  maxResultsPerSecondPerAgent: 50_000,
  /** An agent clock 5 min ahead is broken; its results would sort wrongly forever. */
  maxFutureSkewSeconds: 300,
  /** NTP keeps clocks within milliseconds; 30 s off means NTP is not running. */
  clockSkewWarnSeconds: 30,
  /** Streamed results arrive within seconds; older than 2 min they were buffered. */
  lateAfterSeconds: 120,
  /** A month of exact history for incident review; rollups cover longer ranges. */
  rawRetentionDays: 30,
  /** 13 months of 5-minute rollups: year-over-year comparison. */
  rollupRetentionDays: 400,
  /** DESIGN.md: a target is failing after 3 consecutive failed runs. */
  consecutiveFailures: 3,
  /** [tls] revoked defaults to this file beside [tls] ca: where `smbfleet pki` writes it in a PKI directory. */
  revocationListName: "revoked.json",
} as const;

/**
 * [limits]: what one agent may cost the aggregator, so that a compromised
 * site cannot disturb HQ (docs in config/aggregator.toml). Each value is
 * what a well-behaved agent never reaches, by the reason given.
 */
export const LIMITS_DEFAULTS = {
  /**
   * An agent holds one stream; a reconnect may overlap its old stream until
   * keepalive notices the old one is dead (30 s + 10 s). A third is refused.
   */
  maxStreamsPerAgent: 2,
  /**
   * HTTP/2 streams one connection may have open (grpc.max_concurrent_streams).
   * An agent uses one per connection; 4 leaves room for a stream being torn
   * down beside its replacement, and bounds what one connection makes the
   * server hold before any handler has judged it.
   */
  maxStreamsPerConnection: 4,
  /** The agent sends Hello at once; Welcome is expected within 10 s (agent/pusher/options.ts). */
  helloTimeoutSeconds: 10,
  /**
   * A connection without a stream is closed after this (grpc.max_connection_idle_ms).
   * Longer than the agent's longest reconnect backoff (30 s), so a reconnecting
   * agent keeps its connection; connections left open without streams go.
   */
  connectionIdleSeconds: 120,
  /**
   * Connections are recycled after about this long, ±10 % (grpc.max_connection_age_ms):
   * an agent revoked or disabled in the config is held at most this long, and
   * agents spread over replicas added since. One reconnect per agent per hour
   * is ~0.3 Hello/s for 1,000 agents; nothing unacked is lost (it is resent).
   */
  maxConnectionAgeSeconds: 3600,
  /** After the age's GOAWAY, in-flight batches get this long to be acked before the connection is cut. */
  connectionAgeGraceSeconds: 30,
  /**
   * Each Hello costs a few statements on the 4-connection bookkeeping pool.
   * An agent reconnecting with its backoff (0.5 s doubling to 30 s) sends 6 in
   * its first 30 s, then 2 a minute.
   */
  hellosPerMinute: 6,
  /** Agents beat every 15 s (4 a minute); each beat is one UPDATE on the bookkeeping pool. */
  heartbeatsPerMinute: 12,
  /**
   * Each batch costs a transaction. The agent sends up to 500 results per
   * batch, so max_results_per_second_per_agent (50,000) is 100 batches/s.
   */
  batchesPerSecond: 100,
  /**
   * Distinct targets one agent may report in this process's lifetime; each
   * costs a targets row and 126 metric series (smbprobe's five operations;
   * 226 with all nine). Sites have tens; 1,000 covers the largest while
   * bounding what one agent can add.
   */
  maxTargetsPerAgent: 1000,
  /**
   * New targets an agent may add per minute (a minute's worth at once) beyond
   * those it lists in Hello, which are its configuration and are admitted at
   * once up to max_targets_per_agent. A config change adds a few; an agent
   * reporting targets it never announced is throttled, its batches refused
   * for now (and resent).
   */
  newTargetsPerMinute: 100,
  /** A target's metric series are removed after it has not reported for this long (probe intervals are ≤ 1 h). */
  metricsStaleAfterSeconds: 3600,
  /**
   * Most bytes of target series one /metrics render carries; the rest is left
   * out and counted. Half of V8's longest string (2^29 − 24 units), so the
   * body and prom-client's per-metric strings fit; a target with smbprobe's
   * five operations renders ~18.8 KB, so 1,000 agents of 10 targets ~190 MB.
   */
  maxMetricsBytes: 256 * MiB,
  /**
   * Most bytes of one agent's target series in a render: 1,000 ordinary
   * targets render ~19 MB. A target with every name at its limit renders
   * ~227 KB, so an agent abusing them shows ~150 targets, not 1,000.
   */
  maxMetricsBytesPerAgent: 32 * MiB,
  /** Warnings about one agent's bad input per minute; the rest are counted and summarised. */
  logLinesPerMinute: 20,
} as const;

export const NOTIFIER_DEFAULTS = {
  /** DESIGN.md's notifier port. */
  httpListen: "0.0.0.0:9743",
  /** Mail submission with STARTTLS (RFC 6409). */
  smtpPort: 587,
  smtpTls: true,
} as const;

export const NOTIFICATION_TARGETS = [
  "pager-duty",
  "better-stack",
  "msft-teams",
  "generic-post",
  "email",
] as const;

/** The incident kinds a [[notifications]] block may route (DESIGN.md, Incidents). */
export const INCIDENT_KINDS = [
  "target_failing",
  "latency_degraded",
  "flapping",
  "agent_offline",
  "cross_site",
] as const;

/** PagerDuty Events API v2 severities. */
export const PAGER_DUTY_SEVERITIES = ["critical", "error", "warning", "info"] as const;
