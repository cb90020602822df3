export * from './runtimenode.js';
export * from './sessions.js';
