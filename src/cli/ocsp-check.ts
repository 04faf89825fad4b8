import type { Command } from 'commander';

/** Registers `portcullis ocsp …` commands. (Being written: `ocsp check`.) */
export function registerOcspCommands(_program: Command): void {}
