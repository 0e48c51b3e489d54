// Type-aware lint: the rules that cost most in stream and consumer code are
// no-floating-promises, no-misused-promises and switch-exhaustiveness-check.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "shared/gen/", "coverage/", ".tmp/", "**/*.d.ts"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/switch-exhaustiveness-check": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "off",
    },
  },
  // Role boundaries (docs/architecture.md): a role is one folder and imports
  // only itself and shared/; no role reaches into another or into the CLI
  // dispatcher. Tests and benches may import anything.
  ...["agent", "aggregator", "notifier"].map((role) => ({
    files: [`${role}/**/*.ts`],
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: `^(\\.\\./)+(${["agent", "aggregator", "notifier", "cli"].filter((r) => r !== role).join("|")})/`,
              message: `${role}/ imports only its own modules and shared/ (docs/architecture.md, "Role boundaries")`,
            },
          ],
        },
      ],
    },
  })),
  {
    files: ["shared/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^(\\.\\./)+(agent|aggregator|notifier|cli)/",
              message: "shared/ is used by every role and imports none of them",
            },
          ],
        },
      ],
    },
  },
  // Only a main.ts ends the process; everything else returns an exit code.
  {
    files: ["**/*.ts"],
    ignores: ["main.ts", "**/main.ts", "**/*.test.ts", "test/**", "bench/**", "scripts/**"],
    rules: {
      "no-restricted-properties": [
        "error",
        {
          object: "process",
          property: "exit",
          message: "only a main.ts calls process.exit; return an exit code",
        },
      ],
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
  },
);
