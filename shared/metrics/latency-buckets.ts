// The latency histogram buckets of smbprobe's smb_operation_latency_seconds,
// shared by the agent's /metrics and the aggregator's re-export of it, so a
// site-local Prometheus scraping an agent and the HQ one reading the
// aggregator see the same le values.

/**
 * Seconds. In one smbclient session a loopback operation takes ~1 ms and a
 * LAN one a few ms, while a struggling WAN share takes seconds: 20 buckets
 * from 0.2 ms to 10 s keep both ends readable (smbprobe's defaults start at 5 ms).
 */
export const LATENCY_BUCKETS_SECONDS = [
  0.0002, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5,
  1, 2.5, 5, 10,
];
