import { inspect } from "node:util";

const REDACTED = "<redacted>";

/**
 * A secret value (password, key). It prints as <redacted> through JSON,
 * util.inspect, template strings and pino, so the effective config can be
 * logged safely. Call reveal() only where the value is handed to its consumer.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  get isEmpty(): boolean {
    return this.#value.length === 0;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
