/**
 * A small JSON Schema (2020-12 subset, as the service's OpenAPI 3.1 document uses it) checker and a
 * seeded generator of valid and invalid values, for the property-based conformance test. A keyword
 * outside the subset is an error, so a document that outgrows the checker fails the test loudly.
 */

export type Schema = Record<string, unknown>;
export type Rng = () => number;

const ANNOTATIONS = new Set(["description", "default", "title", "example", "examples", "deprecated"]);
const KEYWORDS = new Set([
  "$ref",
  "type",
  "enum",
  "const",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "minItems",
  "maxItems",
  "minLength",
  "maxLength",
  "pattern",
  "format",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "anyOf",
  "oneOf",
  "allOf",
]);

/** Resolves `#/components/...` references against the document. */
export class SchemaContext {
  constructor(readonly doc: Record<string, unknown>) {}

  resolve(schema: Schema): Schema {
    let current = schema;
    for (let depth = 0; typeof current.$ref === "string"; depth++) {
      if (depth > 20) throw new Error(`$ref loop at ${String(current.$ref)}`);
      const ref = current.$ref;
      if (!ref.startsWith("#/")) throw new Error(`unsupported $ref ${ref}`);
      let target: unknown = this.doc;
      for (const part of ref.slice(2).split("/")) target = (target as Record<string, unknown>)[part];
      if (!target || typeof target !== "object") throw new Error(`dangling $ref ${ref}`);
      current = target as Schema;
    }
    for (const key of Object.keys(current)) {
      if (!KEYWORDS.has(key) && !ANNOTATIONS.has(key)) throw new Error(`unsupported keyword ${key}`);
    }
    return current;
  }
}

const typeOf = (value: unknown): string => {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const FORMATS: Record<string, (v: string) => boolean> = {
  uuid: (v) => UUID.test(v),
  "date-time": (v) =>
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v) && !isNaN(Date.parse(v)),
};

/** The reasons `value` does not conform to `schema` (empty: it conforms). */
export function check(ctx: SchemaContext, schema0: Schema, value: unknown, at = "$"): string[] {
  const schema = ctx.resolve(schema0);
  const errors: string[] = [];
  const fail = (why: string): void => void errors.push(`${at}: ${why}`);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    const actual = typeOf(value);
    if (!types.includes(actual) && !(actual === "integer" && types.includes("number"))) {
      fail(`type ${actual}, expected ${types.join("|")}`);
      return errors;
    }
  }
  if (schema.enum && !(schema.enum as unknown[]).some((e) => e === value)) fail(`not in enum`);
  if ("const" in schema && schema.const !== value) fail(`not the const ${JSON.stringify(schema.const)}`);
  if (typeof value === "string") {
    if (typeof schema.minLength === "number" && [...value].length < schema.minLength) fail("too short");
    if (typeof schema.maxLength === "number" && [...value].length > schema.maxLength) fail("too long");
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value))
      fail(`does not match ${schema.pattern}`);
    const format = schema.format as string | undefined;
    if (format !== undefined) {
      const test = FORMATS[format];
      if (!test) throw new Error(`unsupported format ${format}`);
      if (!test(value)) fail(`not a ${format}`);
    }
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) fail(`< ${schema.minimum}`);
    if (typeof schema.maximum === "number" && value > schema.maximum) fail(`> ${schema.maximum}`);
    if (typeof schema.exclusiveMinimum === "number" && value <= schema.exclusiveMinimum)
      fail(`<= ${schema.exclusiveMinimum}`);
    if (typeof schema.exclusiveMaximum === "number" && value >= schema.exclusiveMaximum)
      fail(`>= ${schema.exclusiveMaximum}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) fail("too few items");
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems) fail("too many items");
    if (schema.items)
      value.forEach((item, i) => errors.push(...check(ctx, schema.items as Schema, item, `${at}[${i}]`)));
  }
  if (typeOf(value) === "object") {
    const object = value as Record<string, unknown>;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const name of (schema.required ?? []) as string[]) if (!(name in object)) fail(`missing ${name}`);
    for (const [name, v] of Object.entries(object)) {
      if (properties[name]) errors.push(...check(ctx, properties[name], v, `${at}.${name}`));
      else if (schema.additionalProperties === false) fail(`unexpected property ${name}`);
      else if (typeof schema.additionalProperties === "object")
        errors.push(...check(ctx, schema.additionalProperties as Schema, v, `${at}.${name}`));
    }
  }
  if (schema.allOf) for (const s of schema.allOf as Schema[]) errors.push(...check(ctx, s, value, at));
  if (schema.anyOf && !(schema.anyOf as Schema[]).some((s) => check(ctx, s, value, at).length === 0))
    fail("matches no anyOf branch");
  if (
    schema.oneOf &&
    (schema.oneOf as Schema[]).filter((s) => check(ctx, s, value, at).length === 0).length !== 1
  )
    fail("matches not exactly one oneOf branch");
  return errors;
}

const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
const int = (rng: Rng, min: number, max: number): number => min + Math.floor(rng() * (max - min + 1));

type Node =
  { kind: "alt"; options: Piece[][] } | { kind: "set"; chars: string[] } | { kind: "lit"; text: string };
interface Piece {
  node: Node;
  min: number;
  max: number;
}

/** Parses the regex subset of the document: literals, `\d`, `\xNN`, classes, `(?:a|b)`, quantifiers. */
function parsePattern(pattern: string): Node {
  let i = 0;
  const atom = (): string => {
    const c = pattern[i++]!;
    if (c !== "\\") return c;
    const e = pattern[i++]!;
    if (e !== "x") return e;
    i += 2;
    return String.fromCharCode(parseInt(pattern.slice(i - 2, i), 16));
  };
  const set = (): string[] => {
    const out: string[] = [];
    i++; // [
    while (pattern[i] !== "]") {
      const c = atom();
      if (pattern[i] === "-" && pattern[i + 1] !== "]") {
        i++;
        const end = atom();
        for (let code = c.charCodeAt(0); code <= end.charCodeAt(0); code++)
          out.push(String.fromCharCode(code));
      } else out.push(c);
    }
    i++; // ]
    return out;
  };
  const alternation = (): Node => {
    const options: Piece[][] = [[]];
    while (i < pattern.length && pattern[i] !== ")") {
      const c = pattern[i]!;
      if (c === "|") {
        i++;
        options.push([]);
        continue;
      }
      if (c === "^" || c === "$") {
        i++;
        continue;
      }
      let node: Node;
      if (c === "(") {
        i++;
        if (pattern.startsWith("?!", i)) {
          // a negative lookahead generates nothing: the caller checks the result against the RegExp
          for (let depth = 1; depth > 0;) {
            i++;
            if (pattern[i] === "(") depth++;
            if (pattern[i] === ")") depth--;
          }
          i++;
          continue;
        }
        if (pattern.startsWith("?:", i)) i += 2;
        node = alternation();
        i++; // )
      } else if (c === "[") node = { kind: "set", chars: set() };
      else if (c === "\\" && pattern[i + 1] === "d") {
        i += 2;
        node = { kind: "set", chars: [..."0123456789"] };
      } else node = { kind: "lit", text: atom() };
      let min = 1;
      let max = 1;
      const q = pattern[i];
      if (q === "{") {
        const close = pattern.indexOf("}", i);
        const [lo, hi] = pattern.slice(i + 1, close).split(",");
        min = Number(lo);
        max = hi === undefined ? min : hi === "" ? min + 5 : Number(hi);
        i = close + 1;
      } else if (q === "?" || q === "*" || q === "+") {
        min = q === "+" ? 1 : 0;
        max = q === "?" ? 1 : min + 5;
        i++;
      }
      options.at(-1)!.push({ node, min, max });
    }
    return { kind: "alt", options };
  };
  return alternation();
}

/** A string for `pattern` (the regex subset above); check it against the real RegExp, lookaheads are skipped. */
export function fromPattern(pattern: string, rng: Rng): string {
  const gen = (node: Node): string => {
    if (node.kind === "lit") return node.text;
    if (node.kind === "set") return pick(rng, node.chars);
    return pick(rng, node.options)
      .map((p) => {
        const n = rng() < 0.3 ? pick(rng, [p.min, p.max]) : int(rng, p.min, Math.min(p.max, p.min + 20));
        return Array.from({ length: n }, () => gen(p.node)).join("");
      })
      .join("");
  };
  return gen(parsePattern(pattern));
}

const PRINTABLE =
  " !#$%&()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_abcdefghijklmnopqrstuvwxyz{|}~";

/** A value conforming to `schema`; `hint(name)` may supply a value for a property of that name. */
export function validValue(
  ctx: SchemaContext,
  schema0: Schema,
  rng: Rng,
  hint: (name: string) => unknown = () => undefined,
): unknown {
  const schema = ctx.resolve(schema0);
  if (schema.allOf) throw new Error("allOf: not generated (the document should not need it)");
  if (schema.enum) return pick(rng, schema.enum as unknown[]);
  if ("const" in schema) return schema.const;
  if (schema.anyOf || schema.oneOf) {
    for (let tries = 0; tries < 50; tries++) {
      const value = validValue(ctx, pick(rng, (schema.anyOf ?? schema.oneOf) as Schema[]), rng, hint);
      if (check(ctx, schema, value).length === 0) return value;
    }
    throw new Error("no valid value for anyOf/oneOf");
  }
  const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
  const type = pick(rng, types);
  switch (type) {
    case "null":
      return null;
    case "boolean":
      return rng() < 0.5;
    case "integer":
    case "number": {
      const lo =
        typeof schema.exclusiveMinimum === "number"
          ? Math.floor(schema.exclusiveMinimum) + 1
          : typeof schema.minimum === "number"
            ? schema.minimum
            : -1000;
      const hi =
        typeof schema.exclusiveMaximum === "number"
          ? Math.ceil(schema.exclusiveMaximum) - 1
          : typeof schema.maximum === "number"
            ? schema.maximum
            : lo + 100_000;
      const r = rng();
      if (r < 0.2) return lo;
      if (r < 0.3) return hi;
      if (r < 0.7) return int(rng, lo, Math.min(hi, lo + 100));
      return Math.min(hi, lo + Math.floor(rng() * Math.min(hi - lo, 2 ** 40)));
    }
    case "string": {
      if (schema.format === "uuid") {
        const hex = (n: number): string =>
          Array.from({ length: n }, () => pick(rng, [..."0123456789abcdef"])).join("");
        return `${hex(8)}-${hex(4)}-4${hex(3)}-8${hex(3)}-${hex(12)}`;
      }
      if (schema.format === "date-time") return new Date(int(rng, 0, 2 ** 41)).toISOString();
      if (typeof schema.pattern === "string") {
        const re = new RegExp(schema.pattern, "u");
        for (let tries = 0; tries < 100; tries++) {
          const value = fromPattern(schema.pattern, rng);
          if (re.test(value) && check(ctx, schema, value).length === 0) return value;
        }
        throw new Error(`no string for ${schema.pattern}`);
      }
      const min = (schema.minLength as number | undefined) ?? 0;
      const max = Math.min((schema.maxLength as number | undefined) ?? min + 30, min + 60);
      const length = rng() < 0.2 ? pick(rng, [min, max]) : int(rng, min, max);
      return Array.from({ length }, () => pick(rng, [...PRINTABLE])).join("");
    }
    case "array": {
      const min = (schema.minItems as number | undefined) ?? 0;
      const max = Math.min((schema.maxItems as number | undefined) ?? min + 3, min + 3);
      return Array.from({ length: int(rng, min, max) }, () =>
        validValue(ctx, (schema.items ?? {}) as Schema, rng, hint),
      );
    }
    case "object": {
      const out: Record<string, unknown> = {};
      const required = new Set((schema.required ?? []) as string[]);
      for (const [name, prop] of Object.entries((schema.properties ?? {}) as Record<string, Schema>)) {
        if (!required.has(name) && rng() < 0.5) continue;
        const hinted = rng() < 0.7 ? hint(name) : undefined;
        out[name] =
          hinted !== undefined && check(ctx, prop, hinted).length === 0
            ? hinted
            : validValue(ctx, prop, rng, hint);
      }
      return out;
    }
    default:
      // no type (e.g. `{}`): anything; an object is the most useful
      return {};
  }
}

/** A value that does NOT conform to `schema`, with what was broken; undefined if `schema` takes anything. */
export function invalidValue(
  ctx: SchemaContext,
  schema0: Schema,
  rng: Rng,
  hint: (name: string) => unknown = () => undefined,
): { value: unknown; why: string } | undefined {
  const schema = ctx.resolve(schema0);
  const candidates: (() => { value: unknown; why: string } | undefined)[] = [];
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  if (types.length > 0) {
    candidates.push(() => {
      const others: [string, unknown][] = [
        ["string", "x"],
        ["integer", 7],
        ["number", 1.5],
        ["boolean", true],
        ["null", null],
        ["array", []],
        ["object", {}],
      ];
      const [type, value] = pick(
        rng,
        others.filter(([t]) => !types.includes(t) && !(t === "integer" && types.includes("number"))),
      );
      return { value, why: `a ${type}` };
    });
  }
  if (types.includes("integer") || types.includes("number")) {
    if (typeof schema.minimum === "number")
      candidates.push(() => ({ value: (schema.minimum as number) - 1, why: "below minimum" }));
    if (typeof schema.exclusiveMinimum === "number")
      candidates.push(() => ({ value: schema.exclusiveMinimum, why: "at the exclusive minimum" }));
    if (typeof schema.maximum === "number")
      candidates.push(() => ({ value: (schema.maximum as number) + 1, why: "above maximum" }));
    if (types.includes("integer") && !types.includes("number"))
      candidates.push(() => ({ value: 2.5, why: "not an integer" }));
  }
  if (types.includes("string")) {
    if (typeof schema.maxLength === "number")
      candidates.push(() => ({ value: "y".repeat((schema.maxLength as number) + 1), why: "too long" }));
    if (typeof schema.minLength === "number" && schema.minLength > 0)
      candidates.push(() => ({ value: "", why: "too short" }));
    if (typeof schema.pattern === "string" || schema.format)
      candidates.push(() =>
        pick(rng, [
          { value: "not-valid", why: "pattern" },
          { value: "0x1234", why: "pattern" },
          { value: `0x${"0".repeat(40)}`, why: "pattern (zero)" },
          { value: "", why: "pattern (empty)" },
        ]),
      );
    if (schema.enum) candidates.push(() => ({ value: "no-such-value", why: "not in enum" }));
  }
  if (types.includes("array")) {
    if (typeof schema.minItems === "number" && schema.minItems > 0)
      candidates.push(() => ({ value: [], why: "too few items" }));
    if (schema.items)
      candidates.push(() => {
        const bad = invalidValue(ctx, schema.items as Schema, rng, hint);
        if (!bad) return undefined;
        const list = validValue(ctx, { ...schema }, rng, hint) as unknown[];
        return { value: [...list, bad.value], why: `an item: ${bad.why}` };
      });
  }
  if (types.includes("object")) {
    const required = (schema.required ?? []) as string[];
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    if (required.length > 0)
      candidates.push(() => {
        const value = validValue(ctx, schema, rng, hint) as Record<string, unknown>;
        const name = pick(rng, required);
        delete value[name];
        return { value, why: `without ${name}` };
      });
    if (schema.additionalProperties === false)
      candidates.push(() => ({
        value: { ...(validValue(ctx, schema, rng, hint) as object), zzExtra: 1 },
        why: "an extra property",
      }));
    const names = Object.keys(properties);
    if (names.length > 0)
      candidates.push(() => {
        const name = pick(rng, names);
        const bad = invalidValue(ctx, properties[name]!, rng, hint);
        if (!bad) return undefined;
        const value = validValue(ctx, schema, rng, hint) as Record<string, unknown>;
        return { value: { ...value, [name]: bad.value }, why: `${name}: ${bad.why}` };
      });
  }
  if (schema.anyOf)
    candidates.push(() =>
      pick(rng, [
        { value: { zz: [] }, why: "no branch" },
        { value: false, why: "no branch" },
      ]),
    );
  for (let tries = 0; tries < 20 && candidates.length > 0; tries++) {
    const result = pick(rng, candidates)();
    if (result && check(ctx, schema, result.value).length > 0) return result;
  }
  return undefined;
}
