// Entry of the core's worker threads (piscina `filename`). Node 20 applies no `--import`ed
// loader hooks to a worker's ESM loading, so `execArgv: ['--import', 'tsx']` makes piscina fall
// back to tsx's require() hook: the worker's TypeScript is then compiled to CommonJS, where every
// imported constant becomes a getter call on a module object — measured ~5x slower on the
// dataplane's fast path. Registering tsx's ESM hooks from inside the thread keeps the worker code
// real ESM, as on the main thread.
import { register } from 'tsx/esm/api';

register();
const mod = await import('./worker.ts');
export default mod.default;
