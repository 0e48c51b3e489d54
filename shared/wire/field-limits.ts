// The most an agent may put in a field of a Result's target, shared by the
// aggregator (which quarantines what is over, aggregator/ingest/decode/
// validate.ts) and the agent's config (which refuses a probe that would be
// quarantined on every run, shared/config/probes.ts).

/**
 * The most an agent may put in a field. Over a cap a result is quarantined
 * (and a Hello target ignored), except the failure message, which is stored
 * cut. They bound what one result can make the aggregator keep: a targets
 * row, the label values of ~230 metric series, a log line.
 */
export const FIELD_LIMITS = {
  /**
   * address, share, domain, name, basedir, in UTF-8 bytes: a DNS name is at
   * most 253, a Windows path component 255, an SMB share name 80.
   */
  maxNameBytes: 255,
  /** Labels describe a target (team, tier, room); smbprobe has none. */
  maxLabels: 16,
  /** Prometheus label names in practice are short identifiers. */
  maxLabelKeyBytes: 64,
  maxLabelValueBytes: 256,
  /**
   * smbclient's failure lines are under 200 bytes; what is past 1 KiB is
   * noise for a human and a cost for every row. Cut, marked, still stored.
   */
  maxFailureMessageBytes: 1024,
} as const;
