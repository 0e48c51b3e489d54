// The parts that join the agent's runtime beside metrics and logs, in start
// order. The durable buffer and the sender to HQ are added here: each is a
// factory that returns null when the config does not call for it.
import type { ComponentFactory } from "./runtime.ts";
import { shippingComponent } from "./shipping.ts";

export const AGENT_COMPONENTS: readonly ComponentFactory[] = [shippingComponent];
