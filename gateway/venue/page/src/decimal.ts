// Prices and quantities stay the venue's decimal strings: compared and summed exactly,
// never through a float (a float cannot hold 0.1). Only the chart draws numbers.

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?$/;

interface Parts {
  negative: boolean;
  units: bigint; // the value times 10^scale
  scale: number;
}

function parts(text: string): Parts {
  const match = DECIMAL.exec(text);
  if (match === null || (match[2] === "" && (match[3] ?? "") === "")) {
    throw new Error(`not a decimal string: ${JSON.stringify(text)}`);
  }
  const fraction = match[3] ?? "";
  const units = BigInt((match[2] ?? "") + fraction || "0");
  return { negative: match[1] === "-" && units !== 0n, units, scale: fraction.length };
}

function signed(value: Parts, scale: number): bigint {
  const units = value.units * 10n ** BigInt(scale - value.scale);
  return value.negative ? -units : units;
}

/** Negative, zero or positive as `a` is below, equal to or above `b`. */
export function compareDecimal(a: string, b: string): number {
  const x = parts(a);
  const y = parts(b);
  const scale = Math.max(x.scale, y.scale);
  const difference = signed(x, scale) - signed(y, scale);
  return difference < 0n ? -1 : difference > 0n ? 1 : 0;
}

/** `"0"`, `"0.0000"`: the feed's way of removing a level. */
export function isZero(text: string): boolean {
  return parts(text).units === 0n;
}

/** a + b, with the larger of their scales. */
export function addDecimal(a: string, b: string): string {
  const x = parts(a);
  const y = parts(b);
  const scale = Math.max(x.scale, y.scale);
  const sum = signed(x, scale) + signed(y, scale);
  const digits = (sum < 0n ? -sum : sum).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const text = scale > 0 ? `${whole}.${digits.slice(digits.length - scale)}` : whole;
  return sum < 0n ? `-${text}` : text;
}
