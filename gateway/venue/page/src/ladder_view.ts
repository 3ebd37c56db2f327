// The depth ladder: asks above (best ask lowest), the spread, bids below (best first).

import type { Level } from "./checksum";
import { element } from "./dom";

export const LADDER_DEPTH = 10;

export function drawLadder(body: HTMLTableSectionElement, bids: readonly Level[],
                           asks: readonly Level[], pick: (price: string) => void): void {
  // Bar widths are drawing only: the largest level shown is the full width.
  const largest = Math.max(...[...bids, ...asks].map(([, q]) => Number(q)), 0);
  const row = (side: "bid" | "ask", [price, quantity]: Level) => {
    const bar = element("span", { class: "bar" });
    bar.style.width = `${largest > 0 ? (100 * Number(quantity)) / largest : 0}%`;
    const size = element("td", { class: "quantity" }, bar, quantity);
    const blank = element("td", { class: "quantity" });
    const tr = element("tr", { class: side, "data-side": side, "data-price": price,
                              "data-quantity": quantity },
                       ...(side === "bid"
                         ? [size, element("td", { class: "price" }, price), blank]
                         : [blank, element("td", { class: "price" }, price), size]));
    tr.addEventListener("click", () => pick(price));
    return tr;
  };
  const rows = [...asks].reverse().map((level) => row("ask", level));
  rows.push(element("tr", { class: "spread" }, element("td", { colspan: "3" }, spread(bids, asks))));
  rows.push(...bids.map((level) => row("bid", level)));
  body.replaceChildren(...rows);
}

function spread(bids: readonly Level[], asks: readonly Level[]): string {
  const bid = bids[0]?.[0];
  const ask = asks[0]?.[0];
  if (bid === undefined && ask === undefined) return "empty book";
  if (bid === undefined || ask === undefined) return "one-sided book";
  return `${bid} / ${ask}`;
}
