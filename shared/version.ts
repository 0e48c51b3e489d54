// smbfleet's version, as every role reports it (Hello, Welcome, logs, --version).
import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;
