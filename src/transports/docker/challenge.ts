/**
 * `WWW-Authenticate` parsing (RFC 7235): a header may carry several challenges, each a
 * scheme followed by comma-separated `key=value` parameters whose values may be quoted
 * strings containing commas and escaped quotes (scopes like "repository:a:pull,push").
 */
export interface Challenge {
  /** Lowercased: "basic", "bearer". */
  readonly scheme: string;
  /** Parameter names lowercased; values unquoted. */
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/** The challenges of a `WWW-Authenticate` header, in order; none for an absent or empty one. */
export function parseChallenges(header: string | null | undefined): Challenge[] {
  return header ? new ChallengeScanner(header).challenges() : [];
}

/** The first challenge of a scheme, if the header offers it. */
export function findChallenge(challenges: readonly Challenge[], scheme: "basic" | "bearer"): Challenge | undefined {
  return challenges.find((c) => c.scheme === scheme);
}

class ChallengeScanner {
  private i = 0;
  constructor(private readonly text: string) {}

  challenges(): Challenge[] {
    const out: Challenge[] = [];
    while (this.skipSeparators()) {
      const scheme = this.token();
      if (scheme === "") { this.i++; continue; }
      out.push({ scheme: scheme.toLowerCase(), params: this.params() });
    }
    return out;
  }

  /** `key=value` pairs until a token not followed by "=", which starts the next challenge. */
  private params(): Record<string, string> {
    const params: Record<string, string> = {};
    while (this.skipSeparators()) {
      const mark = this.i;
      const key = this.token();
      this.skipBlanks();
      if (key === "" || this.text[this.i] !== "=") { this.i = mark; break; }
      this.i++;
      this.skipBlanks();
      params[key.toLowerCase()] = this.text[this.i] === '"' ? this.quoted() : this.bare();
    }
    return params;
  }

  /** Skips blanks and commas; false at the end of the header. */
  private skipSeparators(): boolean {
    while (this.i < this.text.length && /[\s,]/.test(this.text[this.i]!)) this.i++;
    return this.i < this.text.length;
  }

  private skipBlanks(): void {
    while (this.i < this.text.length && /[ \t]/.test(this.text[this.i]!)) this.i++;
  }

  private token(): string {
    const start = this.i;
    while (this.i < this.text.length && TOKEN_CHAR.test(this.text[this.i]!)) this.i++;
    return this.text.slice(start, this.i);
  }

  private quoted(): string {
    let value = "";
    this.i++; // opening quote
    while (this.i < this.text.length && this.text[this.i] !== '"') {
      if (this.text[this.i] === "\\" && this.i + 1 < this.text.length) this.i++;
      value += this.text[this.i];
      this.i++;
    }
    this.i++; // closing quote
    return value;
  }

  private bare(): string {
    const start = this.i;
    while (this.i < this.text.length && !/[\s,]/.test(this.text[this.i]!)) this.i++;
    return this.text.slice(start, this.i);
  }
}
