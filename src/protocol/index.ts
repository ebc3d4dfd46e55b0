export * from './version.js';
export * from './mac.js';
export * from './duration.js';
export * from './names.js';
export * from './wire.js';
export * from './errors.js';
export * from './time.js';
