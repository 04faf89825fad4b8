import type { Command } from 'commander';

/** Registers `portcullis cert …` commands. (Being written: `cert inspect`.) */
export function registerCertCommands(_program: Command): void {}
