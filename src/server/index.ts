export { buildApp, type AppOptions, type RouteInfo } from './app.js';
export { startServer, type StartOptions, type RunningServer } from './start.js';
export { ServerConfigError } from './config-error.js';
export { createServices, type Services, type ServicesOptions } from './services/index.js';
