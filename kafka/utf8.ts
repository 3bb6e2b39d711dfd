/**
 * UTF-8 length and writing of short strings without native calls (pure, no I/O). Header names and values
 * of replicated records are short ASCII strings, five provenance headers per record; `Buffer.byteLength`
 * and `buf.write` cost a native call each, which dominated encoding a 1 KiB record with its headers.
 */
/** Strings up to this length are measured and written in JavaScript when they are ASCII. */
const SHORT_STRING = 64;

/** UTF-8 length of a string (in JavaScript for short ASCII strings). */
export function utf8Length(value: string): number {
  const n = value.length;
  if (n > SHORT_STRING) return Buffer.byteLength(value, "utf8");
  for (let i = 0; i < n; i++) if (value.charCodeAt(i) > 0x7f) return Buffer.byteLength(value, "utf8");
  return n;
}

/** Writes a string of `length` UTF-8 bytes (from `utf8Length`); ASCII when the lengths match. */
export function writeUtf8(buf: Buffer, offset: number, value: string, length: number): number {
  if (length === value.length && length <= SHORT_STRING) {
    for (let i = 0; i < length; i++) buf[offset + i] = value.charCodeAt(i);
  } else {
    buf.write(value, offset, length, "utf8");
  }
  return offset + length;
}
