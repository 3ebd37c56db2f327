// A price-level book as the feed describes it: per side, the total quantity at each
// price, in the feed's decimal strings.

import { bookChecksum, type Level } from "./checksum";
import { compareDecimal, isZero } from "./decimal";

/** One side of the book: quantity by price, read best first. */
class PriceLevels {
  private readonly levels = new Map<string, string>();
  private sorted: Level[] | null = null; // best first; dropped on every change

  constructor(private readonly bestIsHighest: boolean) {}

  /** A level's absolute quantity; "0" removes it. */
  set(price: string, quantity: string): void {
    if (isZero(quantity)) {
      this.levels.delete(price);
    } else {
      this.levels.set(price, quantity);
    }
    this.sorted = null;
  }

  replace(levels: readonly Level[]): void {
    this.levels.clear();
    this.sorted = null;
    for (const [price, quantity] of levels) this.set(price, quantity);
  }

  /** The best `depth` levels, best first. */
  top(depth: number): Level[] {
    if (this.sorted === null) {
      const order = this.bestIsHighest ? -1 : 1;
      this.sorted = [...this.levels.entries()].sort(
        ([a], [b]) => order * compareDecimal(a, b),
      );
    }
    return this.sorted.slice(0, depth);
  }

  get size(): number {
    return this.levels.size;
  }
}

export class LocalBook {
  readonly bids = new PriceLevels(true);
  readonly asks = new PriceLevels(false);

  replace(bids: readonly Level[], asks: readonly Level[]): void {
    this.bids.replace(bids);
    this.asks.replace(asks);
  }

  apply(bids: readonly Level[], asks: readonly Level[]): void {
    for (const [price, quantity] of bids) this.bids.set(price, quantity);
    for (const [price, quantity] of asks) this.asks.set(price, quantity);
  }

  clear(): void {
    this.replace([], []);
  }

  checksum(): number {
    return bookChecksum(this.bids.top(Infinity), this.asks.top(Infinity));
  }
}
