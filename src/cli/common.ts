/** Shared CLI helpers: exit codes and usage errors. */

/** Exit code for usage errors (sysexits EX_USAGE). */
export const EXIT_USAGE = 64;

/** Thrown by a command for a bad argument or unreadable input file; exits with {@link EXIT_USAGE}. */
export class CliUsageError extends Error {}

/** Parses a positive integer option value, or throws CliUsageError naming the option. */
export function parsePositiveInt(value: string, option: string): number {
  if (!/^\d+$/.test(value) || Number(value) <= 0) throw new CliUsageError(`${option} must be a positive integer, got "${value}"`);
  return Number(value);
}
