export { CONSOLE_PATH, createConsoleModule } from './console.module.js';
