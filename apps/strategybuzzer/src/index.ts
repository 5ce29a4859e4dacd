/** StrategyBuzzer, the reference app: what a server or a test imports from it. */
export {
  type BuzzerOptions,
  type BuzzerServices,
  createStrategyBuzzerModule,
  type StrategyBuzzerModule,
} from './buzzer.module.js';
export { channels } from './buzzer.service.js';
export { type BuzzerSettings, buzzerSettings } from './buzzer.settings.js';
export { type FairnessPolicy, pressedAt } from './fairness.js';
export { createRoom, type Question, type RoomEvent } from './game.js';
export { matchTickets, type Ticket } from './matchmaker.js';
export { parseCsvQuestions, parseJsonQuestions } from './questions.js';
export { type CoinPurchase, coinPacks, type Shop } from './shop.js';
