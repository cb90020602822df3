export * from './errors.js';
export * from './version.js';
export * from './ids.js';
export * from './states.js';
export * from './capabilities.js';
export * from './schemas/index.js';
export * from './events.js';
export * from './wire.js';
