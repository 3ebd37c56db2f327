// The messages of the public market-data WebSocket /v1/market (README, "Market data").

import type { Level } from "./checksum";

export interface BookSnapshot {
  type: "snapshot";
  channel: "book";
  symbol: string;
  seq: number;
  bids: Level[];
  asks: Level[];
  checksum: number;
}

export interface BookUpdate {
  type: "update";
  channel: "book";
  symbol: string;
  seq: number;
  prevSeq: number;
  bids: Level[];
  asks: Level[];
  checksum: number;
  replay?: boolean;
}

/** A trade as the page keeps it. */
export interface FeedTrade {
  tradeId: string;
  price: string;
  quantity: string;
  side: "buy" | "sell"; // the aggressor's
  time: string;
  seq: number;
}

/** A trade on the wire: the README words the aggressor `side` and the sequence `seq`;
 *  GET /v1/trades (and so a feed that reuses its shape) `aggressorSide` and `sequence`. */
export interface WireTrade {
  tradeId: string;
  price: string;
  quantity: string;
  side?: "buy" | "sell";
  aggressorSide?: "buy" | "sell";
  time: string;
  seq?: number;
  sequence?: number;
}

export function feedTrade(trade: WireTrade): FeedTrade {
  return {
    tradeId: trade.tradeId, price: trade.price, quantity: trade.quantity,
    side: trade.side ?? trade.aggressorSide ?? "buy", time: trade.time,
    seq: trade.seq ?? trade.sequence ?? 0,
  };
}

export interface TradesMessage {
  type: "trades";
  channel: "trades";
  symbol: string;
  seq: number;
  prevSeq: number;
  trades: WireTrade[];
  replay?: boolean;
}

/** The first message of a trades subscription: its latest trades, and its seq. */
export interface TradesSnapshot {
  type: "snapshot";
  channel: "trades";
  symbol: string;
  seq: number;
  trades: WireTrade[];
}

export interface Heartbeat {
  type: "heartbeat";
  channel: "book" | "trades";
  symbol: string;
  seq: number;
}

export interface Subscribed {
  type: "subscribed" | "unsubscribed";
  channel: string;
  symbol: string;
}

/** A request the venue refused, naming the field; nothing changed. */
export interface FeedError {
  type: "error";
  field?: string;
  message?: string;
}

export type MarketMessage =
  | BookSnapshot
  | BookUpdate
  | TradesSnapshot
  | TradesMessage
  | Heartbeat
  | Subscribed
  | FeedError;

export type Request =
  | { type: "subscribe"; channel: "book"; symbol: string; depth: number; interval: number }
  | { type: "subscribe"; channel: "trades"; symbol: string }
  | { type: "unsubscribe"; channel: "book" | "trades"; symbol: string }
  // Without `from`: a fresh snapshot.
  | { type: "resync"; channel: "book"; symbol: string; from?: number };
