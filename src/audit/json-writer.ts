/**
 * JSON written straight into one reusable byte buffer, for the audit records of the hot
 * path. Building a record by string concatenation left 5-6 KB of short-lived strings per
 * call (every `+` a new string, flattened again on the way to UTF-8); here a record costs
 * one string, made once at the end. The writer tracks, per open object or array, whether
 * a member was written yet, so callers never join commas by hand.
 *
 * What it writes is what serializeRecord (JSON.stringify, then escapeRawUnsafe) would
 * write for the same values: the tests compare the two byte for byte.
 */

/**
 * Characters that are valid JSON yet break line-oriented readers or hide text in a
 * terminal: DEL, C1 controls, U+2028 and U+2029. Serialized records escape them.
 */
const RAW_UNSAFE = /[\u007f-\u009f\u2028\u2029]/gu;

/** JSON text with the RAW_UNSAFE characters escaped as \\uXXXX. */
export function escapeRawUnsafe(json: string): string {
  RAW_UNSAFE.lastIndex = 0;
  if (!RAW_UNSAFE.test(json)) return json;
  return json.replace(RAW_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const BACKSLASH = 0x5c;

/** Start size of the buffer, and the size it returns to after an unusually large record. */
const INITIAL_BYTES = 4096;
const KEEP_BYTES = 64 * 1024;

/** Containers open at once: a record nests a few levels, a Txn summary at most 16 more. */
const MAX_DEPTH = 64;

export class JsonWriter {
  #buf = Buffer.allocUnsafe(INITIAL_BYTES);
  #pos = 0;
  /** Whether everything written so far is ASCII (then the text is made the cheaper way). */
  #ascii = true;
  /** Per open container, 1 once it holds a member or element. */
  readonly #filled = new Uint8Array(MAX_DEPTH);
  #depth = 0;

  /** Forgets what was written: the start of every record. */
  reset(): void {
    if (this.#buf.length > KEEP_BYTES) this.#buf = Buffer.allocUnsafe(INITIAL_BYTES);
    this.#pos = 0;
    this.#ascii = true;
    this.#depth = 0;
  }

  /** What was written, as a string. */
  text(): string {
    return this.#buf.toString(this.#ascii ? 'latin1' : 'utf8', 0, this.#pos);
  }

  /** Opens an object (`{`) or array (`[`). */
  open(bracket: '{' | '['): this {
    if (this.#depth === MAX_DEPTH) throw new Error(`JSON nested deeper than ${String(MAX_DEPTH)} levels`);
    this.#byte(bracket === '{' ? 0x7b : 0x5b);
    this.#filled[this.#depth] = 0;
    this.#depth += 1;
    return this;
  }

  /** Closes the innermost object (`}`) or array (`]`). */
  close(bracket: '}' | ']'): this {
    this.#depth -= 1;
    this.#byte(bracket === '}' ? 0x7d : 0x5d);
    return this;
  }

  /** Starts a member of the open object: a comma if needed, then `"name":`. `name` is an ASCII constant. */
  key(name: string): this {
    this.#ensure(name.length + 4);
    const buf = this.#buf;
    let pos = this.#pos;
    const level = this.#depth - 1;
    if (this.#filled[level] === 1) buf[pos++] = COMMA;
    else this.#filled[level] = 1;
    buf[pos++] = QUOTE;
    for (let i = 0; i < name.length; i += 1) buf[pos++] = name.charCodeAt(i);
    buf[pos++] = QUOTE;
    buf[pos++] = COLON;
    this.#pos = pos;
    return this;
  }

  /** Starts an element of the open array: a comma if needed. */
  item(): this {
    this.#separate();
    return this;
  }

  /** ASCII text written as it is (JSON literals, digits, constant fragments). */
  raw(ascii: string): this {
    this.#asciiText(ascii);
    return this;
  }

  /** Text that is JSON already (made by JSON.stringify and escapeRawUnsafe), written as UTF-8. */
  json(text: string): this {
    this.#ensure(text.length * 3);
    const buf = this.#buf;
    const start = this.#pos;
    let pos = start;
    for (let i = 0; i < text.length; i += 1) {
      const c = text.charCodeAt(i);
      if (c > 0x7f) {
        this.#pos = start + buf.write(text, start, 'utf8');
        this.#ascii = false;
        return this;
      }
      buf[pos++] = c;
    }
    this.#pos = pos;
    return this;
  }

  /** Members of the open object that are JSON already (`"a":1,"b":2`, cached), a comma before them if needed. */
  members(json: string): this {
    this.#separate();
    return this.json(json);
  }

  /** Bytes that are JSON already (a cached fragment), copied as they are. */
  bytes(bytes: Uint8Array, ascii: boolean): this {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
    if (!ascii) this.#ascii = false;
    return this;
  }

  /** A JSON string, escaped as serializeRecord escapes it. */
  string(value: string): this {
    this.#ensure(value.length + 2);
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = QUOTE;
    for (let i = 0; i < value.length; i += 1) {
      const c = value.charCodeAt(i);
      // Printable ASCII but `"` and `\` is the common case; anything else goes the long way.
      if (c < 0x20 || c > 0x7e || c === QUOTE || c === BACKSLASH) return this.json(escapeRawUnsafe(JSON.stringify(value)));
      buf[pos++] = c;
    }
    buf[pos++] = QUOTE;
    this.#pos = pos;
    return this;
  }

  /** Printable-ASCII bytes (an etcd key, checked by the caller) as a JSON string; `"` and `\` escaped. */
  asciiBytesString(bytes: Uint8Array): this {
    this.#ensure(bytes.length * 2 + 2);
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = QUOTE;
    for (let i = 0; i < bytes.length; i += 1) {
      const c = bytes[i] as number;
      if (c === QUOTE || c === BACKSLASH) buf[pos++] = BACKSLASH;
      buf[pos++] = c;
    }
    buf[pos++] = QUOTE;
    this.#pos = pos;
    return this;
  }

  /** A number as JSON.stringify writes it (non-finite numbers become null). */
  number(value: number): this {
    return this.raw(Number.isFinite(value) ? String(value) : 'null');
  }

  /** A boolean. */
  boolean(value: boolean): this {
    return this.raw(value ? 'true' : 'false');
  }

  #separate(): void {
    const level = this.#depth - 1;
    if (this.#filled[level] === 1) this.#byte(COMMA);
    else this.#filled[level] = 1;
  }

  #byte(value: number): void {
    if (this.#pos === this.#buf.length) this.#ensure(1);
    this.#buf[this.#pos++] = value;
  }

  #asciiText(text: string): void {
    this.#ensure(text.length);
    const buf = this.#buf;
    let pos = this.#pos;
    for (let i = 0; i < text.length; i += 1) buf[pos++] = text.charCodeAt(i);
    this.#pos = pos;
  }

  #ensure(more: number): void {
    const needed = this.#pos + more;
    if (needed <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < needed) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.#buf.copy(grown, 0, 0, this.#pos);
    this.#buf = grown;
  }
}
