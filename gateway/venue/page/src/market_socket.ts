// One WebSocket to /v1/market that keeps its subscriptions: it subscribes them again
// after every reconnect (the venue closes a slow consumer with 1013; it comes back).

import { socketUrl } from "./api";
import type { MarketMessage, Request } from "./market_messages";

type Subscription = Extract<Request, { type: "subscribe" }>;

export interface MarketSocketEvents {
  /** A new connection: every subscription starts again from its snapshot. */
  opened(): void;
  message(message: MarketMessage): void;
  state(text: string, healthy: boolean): void;
}

const RECONNECT_MAX_MS = 10_000;

export class MarketSocket {
  private socket: WebSocket | null = null;
  private readonly subscriptions = new Map<string, Subscription>();
  private reconnectDelay = 500;

  constructor(private readonly events: MarketSocketEvents) {}

  connect(): void {
    const socket = new WebSocket(socketUrl("v1/market"));
    this.socket = socket;
    this.events.state("connecting", false);
    socket.addEventListener("open", () => {
      this.reconnectDelay = 500;
      this.events.state("connected", true);
      this.events.opened();
      for (const subscription of this.subscriptions.values()) this.send(subscription);
    });
    socket.addEventListener("message", (event: MessageEvent) => {
      if (typeof event.data !== "string") return;
      let message: MarketMessage;
      try {
        message = JSON.parse(event.data) as MarketMessage;
      } catch {
        this.events.state(`a message that is not JSON: ${event.data.slice(0, 80)}`, false);
        return;
      }
      this.events.message(message);
    });
    socket.addEventListener("close", (event: CloseEvent) => {
      if (this.socket !== socket) return;
      this.socket = null;
      const why = event.reason ? `${event.code} ${event.reason}` : `${event.code}`;
      const delay = this.reconnectDelay;
      this.reconnectDelay = Math.min(delay * 2, RECONNECT_MAX_MS);
      this.events.state(`disconnected (${why}); reconnecting in ${delay / 1000} s`, false);
      window.setTimeout(() => this.connect(), delay);
    });
  }

  subscribe(subscription: Subscription): void {
    this.subscriptions.set(`${subscription.channel}:${subscription.symbol}`, subscription);
    this.send(subscription);
  }

  unsubscribe(channel: "book" | "trades", symbol: string): void {
    if (this.subscriptions.delete(`${channel}:${symbol}`)) {
      this.send({ type: "unsubscribe", channel, symbol });
    }
  }

  send(request: Request): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(request));
  }
}
