#!/usr/bin/env node
/** Executable entry of the `portcullis` command (package.json `bin`). */
import { main } from './main.js';

main(process.argv).then((code) => process.exit(code));
