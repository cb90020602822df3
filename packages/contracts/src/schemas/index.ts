export * from './common.js';
export * from './system.js';
export * from './participants.js';
export * from './sessions.js';
export * from './enrollment.js';
export * from './pairing.js';
export * from './nodes.js';
export * from './runtimenode.js';
