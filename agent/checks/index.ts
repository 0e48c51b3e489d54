// Check kinds by name. The scheduler picks a factory from here and never
// imports a kind's code itself.
import { createSmbCheck } from "./smb/check.ts";

export const CHECKS = { smb: createSmbCheck } as const;

export type CheckKind = keyof typeof CHECKS;
