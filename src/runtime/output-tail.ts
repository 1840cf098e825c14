/**
 * The last lines a child process wrote (stdout and stderr interleaved as they arrived),
 * kept in a bounded buffer so a chatty script cannot fill memory, and told in one line
 * for an error message.
 */
export class OutputTail {
  private readonly lines: string[] = [];
  private partial = "";

  constructor(private readonly keep = 20) {}

  write(chunk: Buffer | string): void {
    const text = this.partial + chunk.toString();
    const parts = text.split(/\r?\n/);
    this.partial = (parts.pop() ?? "").slice(-4096);
    for (const line of parts) this.push(line);
  }

  /** The kept lines, the unfinished last one included. */
  tail(): string[] {
    return this.partial === "" ? [...this.lines] : [...this.lines, this.partial].slice(-this.keep);
  }

  /** The kept lines joined into one, for a one-line error; "(no output)" when there were none. */
  oneLine(): string {
    return OutputTail.join(this.tail());
  }

  /** Lines joined into one, blank ones dropped; "(no output)" when none are left. */
  static join(lines: readonly string[]): string {
    const kept = lines.map((l) => l.trim()).filter((l) => l !== "");
    return kept.length === 0 ? "(no output)" : kept.join(" | ");
  }

  private push(line: string): void {
    this.lines.push(line.length > 500 ? `${line.slice(0, 500)}...` : line);
    if (this.lines.length > this.keep) this.lines.shift();
  }
}
