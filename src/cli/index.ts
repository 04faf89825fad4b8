/** cli/: the `portcullis` command line. Entry file: exports the program builder and runner. */
export { buildProgram, main } from './main.js';
