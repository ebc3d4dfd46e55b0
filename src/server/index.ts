export { buildApp, type AppOptions, type RouteInfo } from './app.js';
export { startServer, ServerConfigError, type StartOptions, type RunningServer } from './start.js';
export { createServices, type Services, type ServicesOptions } from './services/index.js';
