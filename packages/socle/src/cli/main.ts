#!/usr/bin/env node
import { main } from './cli.js';
import { EXIT } from './exit-codes.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`socle: ${String(error)}\n`);
    process.exit(EXIT.failure);
  },
);
