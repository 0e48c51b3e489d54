// Secret values in smbprobe's two spellings:
//   "@format {this.secrets.users.NAME}"  from the secrets file(s) (dynaconf)
//   "$ENV_NAME"                           from environment variable NAME
// Anything else is the literal value. The secrets files are the paths in
// SECRETS_FOR_DYNACONF (comma-separated, later files override earlier ones,
// as dynaconf merges them) or .secrets.toml beside the config. They are read
// only when a reference needs them, and once.
import { statSync } from "node:fs";
import { dirname, join } from "node:path";
import { Secret } from "../secret.ts";
import { DEFAULT_SECRETS_FILE, SECRETS_FILE_ENV } from "./defaults.ts";
import { LineIndex } from "./line-index.ts";
import { ProblemSink } from "./problems.ts";
import { FILE_KEY, isTable, readToml, tomlTypeName, type TomlTable, type TomlValue } from "./toml-source.ts";

const FORMAT_REF = /^@format\s+\{this\.([A-Za-z0-9_.-]+)\}$/;
const ENV_REF = /^\$ENV_(\w+)$/;

interface SecretsFile {
  path: string;
  table: TomlTable | null;
  /** true when the file exists but could not be parsed (its own error is reported). */
  broken: boolean;
}

export class SecretResolver {
  readonly #configFile: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #sink: ProblemSink;
  #files: SecretsFile[] | undefined;

  constructor(configFile: string, env: NodeJS.ProcessEnv, sink: ProblemSink) {
    this.#configFile = configFile;
    this.#env = env;
    this.#sink = sink;
  }

  /**
   * The secret `raw` refers to, or undefined after reporting why it cannot be
   * resolved (at `key`, naming the missing secret or variable).
   */
  resolve(key: string, raw: string): Secret | undefined {
    const env = ENV_REF.exec(raw);
    if (env !== null) {
      const name = env[1]!;
      const value = this.#env[name];
      if (value === undefined) {
        this.#sink.error(key, `environment variable ${name} is not set (${JSON.stringify(raw)} reads it)`);
        return undefined;
      }
      return new Secret(value);
    }
    if (raw.startsWith("@format")) {
      const ref = FORMAT_REF.exec(raw);
      const path = ref?.[1]?.split(".") ?? [];
      if (path[0] !== "secrets" || path.length < 2 || path.includes("")) {
        this.#sink.error(key, 'unsupported @format reference: use "@format {this.secrets.users.NAME}"');
        return undefined;
      }
      return this.#lookup(key, path);
    }
    return new Secret(raw);
  }

  #lookup(key: string, path: string[]): Secret | undefined {
    const files = this.#load();
    const name = path.join(".");
    // dynaconf merges the files in order, so the last one that has the key wins.
    for (const file of [...files].reverse()) {
      const value = dig(file.table, path);
      if (value === undefined) continue;
      if (typeof value !== "string") {
        this.#sink.error(key, `secret ${name} in ${file.path} is ${tomlTypeName(value)}, expected a string`);
        return undefined;
      }
      return new Secret(value);
    }
    // A broken secrets file already has its own error; "not found" would only repeat it.
    if (files.some((f) => f.broken)) return undefined;
    const present = files.filter((f) => f.table !== null).map((f) => f.path);
    const missing = files.filter((f) => f.table === null).map((f) => f.path);
    let message = `secret ${name} not found`;
    if (present.length > 0) message += ` in ${present.join(", ")}`;
    if (missing.length > 0) {
      const how =
        this.#env[SECRETS_FILE_ENV] === undefined
          ? ` (create it, or name the secrets file in ${SECRETS_FILE_ENV})`
          : "";
      message += `${present.length > 0 ? ";" : ":"} ${missing.join(", ")} does not exist${how}`;
    }
    this.#sink.error(key, message);
    return undefined;
  }

  #load(): SecretsFile[] {
    if (this.#files !== undefined) return this.#files;
    const named = this.#env[SECRETS_FILE_ENV];
    const paths =
      named !== undefined && named.trim() !== ""
        ? named
            .split(",")
            .map((p) => p.trim())
            .filter((p) => p !== "")
        : [join(dirname(this.#configFile), DEFAULT_SECRETS_FILE)];
    this.#files = paths.map((path) => this.#read(path));
    return this.#files;
  }

  #read(path: string): SecretsFile {
    // A missing file is reported at the reference that needed it, with context;
    // other read and syntax errors are the secrets file's own problems.
    const scratch = new ProblemSink(path, new LineIndex());
    const { source, notFound } = readToml(path, scratch);
    if (!notFound) for (const p of scratch.problems) this.#sink.add(p.severity, p.key, p.message, p);
    if (source === null) return { path, table: null, broken: !notFound };
    try {
      const mode = statSync(path).mode & 0o777;
      if ((mode & 0o044) !== 0) {
        this.#sink.warn(
          FILE_KEY,
          `readable by group or others (mode ${mode.toString(8).padStart(4, "0")}) but holds passwords: chmod 600`,
          { file: path, line: 0 },
        );
      }
    } catch {
      // It was just read; a race with its removal is not worth a second message.
    }
    return { path, table: source.table, broken: false };
  }
}

function dig(table: TomlTable | null, path: string[]): TomlValue | undefined {
  let value: TomlValue | undefined = table ?? undefined;
  for (const segment of path) {
    if (!isTable(value)) return undefined;
    value = value[segment];
  }
  return value;
}
