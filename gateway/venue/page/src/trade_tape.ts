// The latest trades of a symbol: seeded from GET /v1/trades/{symbol}, kept from the
// `trades` channel. A trade is known by its tradeId, so the two never show one twice.

import { feedTrade, type FeedTrade, type Heartbeat, type TradesMessage,
         type TradesSnapshot } from "./market_messages";

/** A trade as GET /v1/trades/{symbol} words it. */
export interface RestTrade {
  tradeId: string;
  price: string;
  quantity: string;
  aggressorSide: "buy" | "sell";
  time: string;
  sequence: number;
}

const KEEP = 200;

export class TradeTape {
  private readonly trades = new Map<string, FeedTrade>();
  /** The seq of the last trades message; null before the first. */
  private seq: number | null = null;

  reset(): void {
    this.trades.clear();
    this.seq = null;
  }

  seed(trades: readonly RestTrade[]): FeedTrade[] {
    return this.add(trades.map(feedTrade));
  }

  /** A subscription's first message: the trades it knows, and the seq it is at. */
  snapshot(message: TradesSnapshot): FeedTrade[] {
    this.seq = message.seq;
    return this.add(message.trades.map(feedTrade));
  }

  /** The trades of a feed message that were not known yet, and whether a message was
   *  missed before it (then the caller seeds from REST again). */
  receive(message: TradesMessage): { fresh: FeedTrade[]; gap: boolean } {
    const gap = this.seq !== null && message.prevSeq !== this.seq && message.seq > this.seq;
    if (this.seq === null || message.seq > this.seq) this.seq = message.seq;
    return { fresh: this.add(message.trades.map(feedTrade)), gap };
  }

  /** A heartbeat past the last message means one was missed. */
  heartbeat(message: Heartbeat): boolean {
    if (this.seq === null) {
      this.seq = message.seq;
      return false;
    }
    const gap = message.seq > this.seq;
    if (gap) this.seq = message.seq;
    return gap;
  }

  /** Newest first. */
  latest(count: number): FeedTrade[] {
    return [...this.trades.values()]
      .sort((a, b) => b.seq - a.seq || compareIds(b.tradeId, a.tradeId))
      .slice(0, count);
  }

  private add(trades: readonly FeedTrade[]): FeedTrade[] {
    const fresh = trades.filter((t) => !this.trades.has(t.tradeId));
    for (const trade of fresh) this.trades.set(trade.tradeId, trade);
    if (this.trades.size > KEEP) {
      const keep = new Set(this.latest(KEEP).map((t) => t.tradeId));
      for (const id of this.trades.keys()) if (!keep.has(id)) this.trades.delete(id);
    }
    return fresh;
  }
}

/** Trade ids are decimal integers: the longer is the larger. */
function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
