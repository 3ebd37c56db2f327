// The account's open orders (GET /v1/orders?status=open), each with a cancel button
// (DELETE /v1/orders/{id}). Polled while a key is in use: an order's state is what the
// venue persisted, a moment after the engine decided it.

import { describe, request } from "./api";
import { element } from "./dom";

/** An order as GET /v1/orders words it (the fields the page shows). */
interface Order {
  orderId: string;
  symbol: string;
  side: "buy" | "sell";
  price: string | null;
  quantity: string;
  leavesQty: string;
  cumQty: string;
  status: string;
}

const POLL_MS = 1000;

export class OpenOrders {
  private timer: number | null = null;
  private readonly canceling = new Set<string>(); // cancels queued, not yet reflected

  constructor(private readonly body: HTMLTableSectionElement,
              private readonly status: (text: string, healthy: boolean) => void,
              private readonly key: () => string | null) {}

  start(): void {
    this.stop();
    void this.refresh();
    this.timer = window.setInterval(() => void this.refresh(), POLL_MS);
  }

  stop(): void {
    if (this.timer !== null) window.clearInterval(this.timer);
    this.timer = null;
  }

  async refresh(): Promise<void> {
    const key = this.key();
    if (key === null) return;
    const answer = await request("GET", "v1/orders?status=open&limit=200", { key });
    if (key !== this.key()) return; // the key changed while we asked
    if (answer.status === 401) {
      this.stop();
      this.status(`key refused: ${describe(answer.body)}`, false);
      this.body.replaceChildren();
      return;
    }
    if (answer.status !== 200) {
      this.status(`open orders: ${answer.status} ${describe(answer.body)}`, false);
      return;
    }
    const orders = (answer.body as { orders: Order[] }).orders;
    this.status(`key accepted: ${orders.length} open order${orders.length === 1 ? "" : "s"}`,
                true);
    this.draw(orders);
  }

  private draw(orders: readonly Order[]): void {
    const open = new Set(orders.map((o) => o.orderId));
    for (const id of this.canceling) if (!open.has(id)) this.canceling.delete(id);
    if (orders.length === 0) {
      this.body.replaceChildren(element("tr", { class: "empty" },
                                        element("td", { colspan: "8" }, "no open orders")));
      return;
    }
    this.body.replaceChildren(...orders.map((order) => {
      const pending = this.canceling.has(order.orderId);
      const cancel = element("button", { type: "button", class: "cancel",
                                         "data-order-id": order.orderId },
                             pending ? "canceling" : "Cancel");
      cancel.toggleAttribute("disabled", pending);
      cancel.addEventListener("click", () => void this.cancel(order.orderId, cancel));
      return element("tr", { class: order.side, "data-order-id": order.orderId },
                     element("td", {}, order.orderId), element("td", {}, order.symbol),
                     element("td", {}, order.side), element("td", {}, order.price ?? "market"),
                     element("td", {}, order.leavesQty), element("td", {}, order.cumQty),
                     element("td", {}, order.status), element("td", {}, cancel));
    }));
  }

  private async cancel(orderId: string, button: HTMLButtonElement): Promise<void> {
    const key = this.key();
    if (key === null) return;
    button.disabled = true;
    button.textContent = "canceling";
    const answer = await request("DELETE", `v1/orders/${encodeURIComponent(orderId)}`, { key });
    if (answer.status === 202) {
      this.canceling.add(orderId);
      this.status(`cancel of order ${orderId} queued`, true);
    } else {
      // 409: already done (filled, canceled...); 404: not this account's.
      button.disabled = false;
      button.textContent = "Cancel";
      this.status(`cancel of order ${orderId}: ${answer.status} ${describe(answer.body)}`, false);
    }
    await this.refresh();
  }
}
