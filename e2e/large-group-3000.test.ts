// A 3,000-member group end to end (e2e/large-group.ts). The 5,000-member run is e2e/large/ (npm run test:large).
import { largeGroupTest } from "./large-group.ts";

largeGroupTest(3_000, 300_000);
