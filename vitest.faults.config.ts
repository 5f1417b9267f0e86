// The workerd tests that restart every Durable Object (abortAllDurableObjects): one file at a time, and
// apart from the other suites, because an abort kills whatever objects are running in the process.
// With the pinned pool, an abort that catches an object mid-call can also stall the run after its tests
// passed; scripts/test.mjs gives this step a deadline and one retry when it stalls (never on a failure).
import { defineConfig } from "vitest/config";
import { ABORTING_TESTS, workerdConfig } from "./vitest.config";

export default defineConfig(() => workerdConfig({ include: ABORTING_TESTS, exclude: [], parallel: false }));
