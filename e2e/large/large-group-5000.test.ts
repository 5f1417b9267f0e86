// A 5,000-member group end to end (e2e/large-group.ts), run by `npm run test:large`, not by `npm test`: on one
// local workerd process, waking 5,000 user objects (each with its own SQLite database) can exhaust the process's
// SQLite memory (SQLITE_NOMEM, bench/README.md finding 8). It passed alone (113 s); it failed once in a full run.
import { largeGroupTest } from "../large-group.ts";

largeGroupTest(5_000, 400_000);
