// The recent trades, newest first; those just received flash once.

import { element } from "./dom";
import type { FeedTrade } from "./market_messages";

export const TRADES_SHOWN = 50;

export function drawTrades(body: HTMLTableSectionElement, trades: readonly FeedTrade[],
                           fresh: ReadonlySet<string>): void {
  if (trades.length === 0) {
    body.replaceChildren(element("tr", { class: "empty" },
                                 element("td", { colspan: "4" }, "no trades yet")));
    return;
  }
  body.replaceChildren(...trades.map((trade) => element(
    "tr",
    { class: `${trade.side}${fresh.has(trade.tradeId) ? " fresh" : ""}`,
      "data-trade-id": trade.tradeId, "data-price": trade.price,
      "data-quantity": trade.quantity },
    element("td", {}, clock(trade.time)),
    element("td", { class: "price" }, trade.price),
    element("td", {}, trade.quantity),
    element("td", {}, trade.side),
  )));
}

/** HH:MM:SS of an ISO time, in the browser's time zone. */
function clock(time: string): string {
  const date = new Date(time);
  return Number.isNaN(date.getTime()) ? time : date.toLocaleTimeString([], { hour12: false });
}
