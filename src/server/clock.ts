/** Time is injected so tests and benchmarks can drive it. */
export type Clock = () => Date;
export const systemClock: Clock = () => new Date();
