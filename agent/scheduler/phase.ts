// Where in its interval a target fires. Each target gets a stable phase
// offset (a hash of its identity and the agent's id), so that 200 targets
// with a 60 s interval spread over the minute instead of all starting at
// once, and the same target keeps the same place after a restart. A small
// random per-run jitter is added on top; it is relative to the slot, so it
// never accumulates and the rate stays fixed.

/** Per-run jitter is at most this fraction of the interval... */
export const RUN_JITTER_FRACTION = 0.02;
/** ...and never more than this: a 1 h interval should not wander by 72 s. */
export const RUN_JITTER_MAX_MS = 1_000;

/** FNV-1a, 32 bit: stable across runs and platforms, good enough to spread. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** Stable offset in [0, intervalMs) for this target on this agent. */
export function phaseOffsetMs(seed: string, targetKey: string, intervalMs: number): number {
  const fraction = fnv1a32(`${seed}\u0000${targetKey}`) / 0x1_0000_0000;
  return Math.floor(fraction * intervalMs);
}

/** Random per-run jitter in [0, max) where max is the smaller of the two limits above. */
export function runJitterMs(intervalMs: number, random: () => number): number {
  const max = Math.min(RUN_JITTER_MAX_MS, intervalMs * RUN_JITTER_FRACTION);
  return Math.floor(random() * max);
}
