// A command line the CLI cannot run as written: exit code 2, with the usage to follow.
export class UsageError extends Error {
  override name = "UsageError";
  constructor(message: string, readonly usage?: string) {
    super(message);
  }
}
