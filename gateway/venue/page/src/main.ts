// The venue page: the symbols, a live depth ladder and trades from /v1/market, a price
// chart from the candles, and with an API key the account's open orders and a ticket.

import "./page.css";
import { ApiError, getJson } from "./api";
import { BookSync, type SyncResult } from "./book_sync";
import { CandleSeries, INTERVALS, type Interval } from "./candles";
import { byId } from "./dom";
import { drawLadder, LADDER_DEPTH } from "./ladder_view";
import type { MarketMessage } from "./market_messages";
import { MarketSocket } from "./market_socket";
import { OpenOrders } from "./open_orders";
import { OrderTicket } from "./order_ticket";
import { PriceChart } from "./price_chart";
import { TradeTape, type RestTrade } from "./trade_tape";
import { drawTrades, TRADES_SHOWN } from "./trades_view";

// GET /v1/candles is from the database: fetched again now and then, it corrects what
// the trades feed added to the last candle meanwhile.
const CANDLES_REFRESH_MS = 60_000;

interface InstrumentView {
  symbol: string;
}

const symbolSelect = byId<HTMLSelectElement>("symbol");
const ladder = byId<HTMLTableElement>("ladder").tBodies[0]!;
const tradesBody = byId<HTMLTableElement>("trades").tBodies[0]!;
const ordersBody = byId<HTMLTableElement>("orders").tBodies[0]!;

function show(id: string, text: string, healthy: boolean | null = null): void {
  const node = byId<HTMLElement>(id);
  node.textContent = text;
  node.classList.toggle("ok", healthy === true);
  node.classList.toggle("bad", healthy === false);
}

let symbol = "";
let interval: Interval = "1m";
let apiKey: string | null = null;
const book = new BookSync();
const tape = new TradeTape();
let candles = new CandleSeries(interval);
let candlesLoaded = false;
const chart = new PriceChart(byId("chart"));

const ticket = new OrderTicket(() => apiKey, () => window.setTimeout(() => void orders.refresh(), 300));
const orders = new OpenOrders(ordersBody, (text, healthy) => show("account-status", text, healthy),
                              () => apiKey);

const market = new MarketSocket({
  opened() {
    book.reset();
    drawBook();
  },
  message: onMarketMessage,
  state(text, healthy) {
    show("feed-status", `market feed: ${text}`, healthy);
  },
});

function onMarketMessage(message: MarketMessage): void {
  if (message.type === "error") {
    notice(`the venue refused ${message.field ?? "a request"}: ${message.message ?? "?"}`);
    return;
  }
  if (message.type === "subscribed" || message.type === "unsubscribed") return;
  if (message.symbol !== symbol) return; // a symbol left a moment ago
  if (message.channel === "book") {
    switch (message.type) {
      case "snapshot": return onBook(book.snapshot(message));
      case "update": return onBook(book.update(message));
      case "heartbeat": return onBook(book.heartbeat(message));
    }
    return;
  }
  switch (message.type) {
    case "snapshot":
      if (message.channel === "trades") tape.snapshot(message);
      return onTrades();
    case "trades": {
      const { fresh, gap } = tape.receive(message);
      if (gap) void seedTrades();
      onTrades(new Set(fresh.map((t) => t.tradeId)));
      if (candlesLoaded) {
        for (const trade of fresh) {
          const candle = candles.add(trade);
          if (candle !== null) chart.update(candle);
          show("chart-status", "");
        }
      }
      return;
    }
    case "heartbeat":
      if (tape.heartbeat(message)) void seedTrades();
      return;
  }
}

function onBook(result: SyncResult): void {
  if (result.resyncFrom !== null) {
    market.send(result.resyncFrom === "snapshot"
      ? { type: "resync", channel: "book", symbol }
      : { type: "resync", channel: "book", symbol, from: result.resyncFrom });
    if (result.note !== null) notice(result.note);
  }
  if (result.changed) drawBook();
  const resynced = book.checksumFailures
    ? ` (${book.checksumFailures} checksum mismatch${book.checksumFailures > 1 ? "es" : ""} resynced)`
    : "";
  show("book-status", book.seq === null ? "waiting for the snapshot"
                                        : `in sync at seq ${book.seq}, checksum ok${resynced}`,
       book.seq !== null);
}

function notice(text: string): void {
  const node = byId<HTMLElement>("book-alert");
  node.textContent = `${new Date().toLocaleTimeString([], { hour12: false })} ${text}`;
  node.hidden = false;
}

function drawBook(): void {
  drawLadder(ladder, book.book.bids.top(LADDER_DEPTH), book.book.asks.top(LADDER_DEPTH),
             (price) => ticket.price(price));
}

function onTrades(fresh: ReadonlySet<string> = new Set()): void {
  drawTrades(tradesBody, tape.latest(TRADES_SHOWN), fresh);
}

async function seedTrades(): Promise<void> {
  const asked = symbol;
  try {
    const trades = await getJson<RestTrade[]>(
      `v1/trades/${encodeURIComponent(asked)}?limit=${TRADES_SHOWN}`);
    if (asked !== symbol) return;
    tape.seed(trades);
    onTrades();
  } catch (error) {
    notice(`trades: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function loadCandles(): Promise<void> {
  const asked = { symbol, interval };
  try {
    const rows = await getJson<Parameters<CandleSeries["load"]>[0]>(
      `v1/candles/${encodeURIComponent(asked.symbol)}?interval=${asked.interval}`);
    if (asked.symbol !== symbol || asked.interval !== interval) return;
    candles.load(rows);
    show("chart-status", rows.length ? "" : "no trades in this range yet");
  } catch (error) {
    if (asked.symbol !== symbol || asked.interval !== interval) return;
    // Without candles the chart still draws what the trades feed brings from now on.
    const why = error instanceof ApiError ? `${error.status}` : String(error);
    show("chart-status", `candles not available (${why}); drawing live trades only`, false);
  }
  candlesLoaded = true;
  chart.show(candles.candles);
}

function selectSymbol(next: string): void {
  if (next === symbol) return;
  if (symbol) {
    market.unsubscribe("book", symbol);
    market.unsubscribe("trades", symbol);
  }
  symbol = next;
  symbolSelect.value = next;
  ticket.select(next);
  history.replaceState(null, "", `#${encodeURIComponent(next)}`);
  book.reset();
  byId<HTMLElement>("book-alert").hidden = true;
  drawBook();
  tape.reset();
  onTrades();
  selectInterval(interval, true);
  // Subscribed before the REST seed: a trade in both is shown once (by tradeId).
  market.subscribe({ type: "subscribe", channel: "book", symbol: next, depth: LADDER_DEPTH,
                     interval: 0 });
  market.subscribe({ type: "subscribe", channel: "trades", symbol: next });
  void seedTrades();
}

function selectInterval(next: Interval, force = false): void {
  if (next === interval && !force) return;
  interval = next;
  for (const button of document.querySelectorAll<HTMLButtonElement>("[data-interval]")) {
    button.setAttribute("aria-pressed", String(button.dataset["interval"] === next));
  }
  candles = new CandleSeries(next);
  candlesLoaded = false;
  chart.show([]);
  void loadCandles();
}

async function start(): Promise<void> {
  market.connect();
  let instruments: InstrumentView[];
  try {
    instruments = await getJson<InstrumentView[]>("v1/instruments");
  } catch (error) {
    show("feed-status", `instruments: ${error instanceof Error ? error.message : error}`, false);
    return;
  }
  const symbols = instruments.map((i) => i.symbol);
  symbolSelect.replaceChildren(...symbols.map((s) => new Option(s, s)));
  const wanted = decodeURIComponent(location.hash.slice(1));
  const first = symbols.includes(wanted) ? wanted : symbols[0] ?? "";
  ticket.symbols(symbols, first);
  selectSymbol(first);
}

symbolSelect.addEventListener("change", () => selectSymbol(symbolSelect.value));
for (const button of document.querySelectorAll<HTMLButtonElement>("[data-interval]")) {
  button.addEventListener("click", () => {
    const next = button.dataset["interval"];
    if (next !== undefined && next in INTERVALS) selectInterval(next as Interval);
  });
}
byId<HTMLFormElement>("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  apiKey = byId<HTMLInputElement>("api-key").value.trim() || null;
  if (apiKey === null) {
    orders.stop();
    ordersBody.replaceChildren();
    show("account-status", "no key: paste one to see your open orders and trade");
  } else {
    show("account-status", "checking the key");
    orders.start();
  }
});
window.setInterval(() => void loadCandles(), CANDLES_REFRESH_MS);
void start();
