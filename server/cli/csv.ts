/**
 * A small RFC 4180 CSV reader (pure): comma-separated fields, `"`-quoted fields with `""` for a quote and
 * line breaks or commas inside, CRLF or LF line ends, a UTF-8 BOM dropped, blank lines skipped. A broken
 * record (a stray quote, an unterminated quoted field) is returned with its error so that the caller can
 * report it by line number and go on with the rest.
 */

export interface CsvRecord {
  /** The 1-based line of the file where the record starts. */
  line: number;
  fields: string[];
  /** Set when the record is not well-formed CSV (its fields are then not to be used). */
  error?: string;
}

export function parseCsv(text: string): CsvRecord[] {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const records: CsvRecord[] = [];
  let i = 0;
  let line = 1;

  /** Skips to just after the end of the current physical line (for a broken record). */
  const skipLine = (): void => {
    while (i < src.length && src[i] !== "\n" && src[i] !== "\r") i++;
    endOfLine();
  };
  /** At a line end (`\r\n`, `\n` or `\r`): steps over it; returns false at any other character. */
  const endOfLine = (): boolean => {
    if (src[i] === "\r") i += src[i + 1] === "\n" ? 2 : 1;
    else if (src[i] === "\n") i++;
    else return false;
    line++;
    return true;
  };

  while (i < src.length) {
    const start = line;
    const fields: string[] = [];
    let error: string | undefined;
    for (;;) {
      let field = "";
      if (src[i] === '"') {
        i++;
        let closed = false;
        while (i < src.length) {
          const c = src[i]!;
          if (c === '"') {
            if (src[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (c === "\n" || (c === "\r" && src[i + 1] !== "\n")) line++;
          field += c;
          i++;
        }
        if (!closed) {
          error = `quoted field ${fields.length + 1} is not closed`;
          break;
        }
        if (i < src.length && src[i] !== "," && src[i] !== "\r" && src[i] !== "\n") {
          error = `field ${fields.length + 1}: unexpected character after the closing quote`;
          skipLine();
          break;
        }
      } else {
        while (i < src.length && src[i] !== "," && src[i] !== "\r" && src[i] !== "\n") field += src[i++];
        if (field.includes('"')) {
          error = `field ${fields.length + 1}: a quote inside an unquoted field (quote the whole field)`;
          skipLine();
          break;
        }
      }
      fields.push(field);
      if (src[i] === ",") {
        i++;
        continue;
      }
      endOfLine();
      break;
    }
    if (error !== undefined) records.push({ line: start, fields: [], error });
    else if (!(fields.length === 1 && fields[0]!.trim() === "")) records.push({ line: start, fields });
  }
  return records;
}

/** One field as CSV: quoted when it holds a comma, a quote, a line break or edge spaces. */
export function csvField(value: string): string {
  return /[",\r\n]|^\s|\s$/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** One record as a CSV line (CRLF-terminated, as RFC 4180 has it). */
export function csvLine(values: readonly string[]): string {
  return `${values.map(csvField).join(",")}\r\n`;
}
