// How smbclient is started for one run: argv, environment, and the run's
// private temp dir. Credentials never reach argv (which every user can read
// in /proc/<pid>/cmdline):
//   * the password goes in the PASSWD environment variable, which only the
//     process owner and root can read, keeps every byte (an authentication
//     file would drop leading spaces), and never touches the disk;
//   * the username goes in a 0600 authentication file (-A) in a 0700 dir,
//     because on -U a '%' or '/' in it would be parsed as password or domain.
import type { ProbeTarget } from "../../../shared/config/types.ts";
import { LIMITS } from "./options.ts";

export interface Invocation {
  file: string;
  args: string[];
  env: Record<string, string>;
}

/** Environment variables passed through to smbclient: where to find things, and Kerberos' credential cache. */
const PASSED_ENV = ["PATH", "HOME", "KRB5CCNAME", "KRB5_CONFIG", "TMPDIR"] as const;

/** The authentication file's text; a line break in the username would let it add lines, so it is refused. */
export function authFileText(username: string): string {
  if (/[\r\n]/.test(username)) throw new RangeError("username contains a line break");
  return `username = ${username}\n`;
}

export function buildInvocation(
  target: ProbeTarget,
  paths: { stdbuf: string; smbclient: string; authFile: string },
  parentEnv: NodeJS.ProcessEnv,
): Invocation {
  const args = [
    "-i0", // unbuffered stdin: two command lines in one read would hang the session
    "-oL",
    "-eL", // line-buffered output: otherwise nothing arrives before exit
    paths.smbclient,
    "-E", // every message on stderr, in order
    "--debuglevel=1", // put/get confirm success, and connect errors are told, at level 1
    `//${target.address}/${target.share}`,
    "-p",
    String(target.port),
    "-A",
    paths.authFile,
    // smbclient's own timeout follows ours, one second behind: our timer (from spawn) always fires
    // first and kills the process, so a hang is classified the same way every time; smbclient's is
    // only a backstop that keeps it from waiting its default 20 s if it were ever left alone.
    "-t",
    String(Math.ceil(target.operationTimeoutSeconds) + LIMITS.smbclientTimeoutLagSeconds),
    `--use-kerberos=${target.auth === "kerberos" ? "required" : "off"}`,
  ];
  if (target.domain.length > 0) args.push("-W", target.domain);
  if (target.protocol !== null) args.push(`--option=client min protocol=${target.protocol}`);

  const env: Record<string, string> = { LC_ALL: "C", PASSWD: target.password.reveal() };
  for (const name of PASSED_ENV) {
    const value = parentEnv[name];
    if (value !== undefined) env[name] = value;
  }
  env["PATH"] ??= "/usr/bin:/bin";
  return { file: paths.stdbuf, args, env };
}
