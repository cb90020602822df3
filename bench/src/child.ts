/** A bench child process: `child.ts <role>` serves `roles/<role>.ts` over IPC (see ipc.ts). */
import { serve, type Handlers } from './ipc.js';

const role = process.argv[2];
const module = (await import(`./roles/${role}.js`)) as { handlers: Handlers };
serve(module.handlers);
