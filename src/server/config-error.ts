/** Thrown for a server option that cannot work (the CLI exits 2 with the message). */
export class ServerConfigError extends Error {
  override name = 'ServerConfigError';
}

/** Thrown when the storage a server option names cannot be reached (the CLI exits 1 with the message, which says what to do). */
export class StorageUnavailableError extends Error {
  override name = 'StorageUnavailableError';
}
