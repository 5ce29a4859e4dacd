import { createConsoleModule } from './modules/console/index.js';

/** `SOCLE_MODULES=socle/console` loads the operator console (see docs/console.md). */
export default createConsoleModule();
