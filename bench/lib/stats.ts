/** Pure statistics for the benchmark: medians, percentiles and the spread of repeated measurements. */

/** Nearest-rank percentile (`p` in 0..100) of unsorted values; NaN for an empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  if (p < 0 || p > 100) throw new RangeError(`percentile: p must be within 0..100, got ${p}`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

/** Median (mean of the two middle values for an even count); NaN for an empty list. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1) return sorted[mid] as number;
  return ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The median and spread of one measurement repeated `values.length` times. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median, in percent; 0 for a single value. */
  spreadPct: number;
  values: number[];
}

/** Summarises repeated measurements; `null` when no repetition produced a value. */
export function summarize(values: readonly (number | null | undefined)[]): Summary | null {
  const present = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  if (present.length === 0) return null;
  const med = median(present);
  const min = Math.min(...present);
  const max = Math.max(...present);
  return {
    median: med,
    min,
    max,
    spreadPct: med === 0 ? 0 : ((max - min) / Math.abs(med)) * 100,
    values: present,
  };
}

/** `a / b`, or null when either is missing or b is 0. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (typeof a !== "number" || typeof b !== "number" || !Number.isFinite(a) || !Number.isFinite(b))
    return null;
  if (b === 0) return null;
  return a / b;
}
