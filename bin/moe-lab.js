#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so that `npx moe-lab` works straight
// after `npm install`, with no build step to remember.
import { tsImport } from "tsx/esm/api";

const { main } = await tsImport("../src/cli.ts", import.meta.url);
process.exitCode = await main(process.argv.slice(2));
