// Candles of a symbol: loaded from GET /v1/candles/{symbol}, the last one kept live from
// the trades feed.

import { addDecimal, compareDecimal } from "./decimal";
import type { FeedTrade } from "./market_messages";

export const INTERVALS = { "1m": 60, "5m": 300, "1h": 3600, "1d": 86400 } as const;
export type Interval = keyof typeof INTERVALS;

export interface Candle {
  time: number; // the start of its interval, seconds since the epoch (UTC)
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  trades: number;
}

/** Seconds since the epoch from an ISO time or a number of seconds (or milliseconds). */
export function epochSeconds(time: string | number): number {
  if (typeof time === "number") return time > 1e11 ? Math.floor(time / 1000) : time;
  return Math.floor(Date.parse(time) / 1000);
}

export class CandleSeries {
  candles: Candle[] = [];

  constructor(readonly interval: Interval) {}

  load(candles: readonly (Omit<Candle, "time"> & { time: string | number })[]): void {
    this.candles = candles
      .map((c) => ({ ...c, time: epochSeconds(c.time) }))
      .sort((a, b) => a.time - b.time);
  }

  /** The trade in its candle (the last one, or a new one after it); the candle it
   *  changed, or null for a trade older than the last candle. */
  add(trade: FeedTrade): Candle | null {
    const seconds = INTERVALS[this.interval];
    const start = Math.floor(epochSeconds(trade.time) / seconds) * seconds;
    const last = this.candles[this.candles.length - 1];
    if (last !== undefined && start < last.time) return null;
    if (last === undefined || start > last.time) {
      const candle = {
        time: start, open: trade.price, high: trade.price, low: trade.price,
        close: trade.price, volume: trade.quantity, trades: 1,
      };
      this.candles.push(candle);
      return candle;
    }
    if (compareDecimal(trade.price, last.high) > 0) last.high = trade.price;
    if (compareDecimal(trade.price, last.low) < 0) last.low = trade.price;
    last.close = trade.price;
    last.volume = addDecimal(last.volume, trade.quantity);
    last.trades += 1;
    return last;
  }
}
