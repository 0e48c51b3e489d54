export interface CommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface CommandModule {
  run(argv: readonly string[], env: NodeJS.ProcessEnv, signal: AbortSignal, io: CommandIo): Promise<number>;
}
