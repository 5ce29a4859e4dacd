export {
  type Bus,
  type BusHandler,
  type CreateBusOptions,
  createBus,
  createMemoryBus,
  createRedisBus,
} from './bus.js';
