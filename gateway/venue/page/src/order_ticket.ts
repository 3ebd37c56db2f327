// The order ticket: a limit order (POST /v1/orders). A 422 names each bad field in its
// errors' `loc` (["body", "price"]); each message is shown next to its field.

import { describe, fieldErrors, request } from "./api";
import { byId } from "./dom";

const FIELDS = ["symbol", "side", "price", "quantity"] as const;
type Field = (typeof FIELDS)[number];

export class OrderTicket {
  private readonly form = byId<HTMLFormElement>("ticket");
  private readonly result = byId<HTMLElement>("ticket-result");

  constructor(private readonly key: () => string | null,
              private readonly accepted: () => void) {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.send();
    });
  }

  /** The symbols the ticket offers, and the one it shows. */
  symbols(symbols: readonly string[], selected: string): void {
    const select = this.input("symbol") as HTMLSelectElement;
    select.replaceChildren(...symbols.map((s) => new Option(s, s, false, s === selected)));
  }

  select(symbol: string): void {
    this.input("symbol").value = symbol;
  }

  price(price: string): void {
    this.input("price").value = price;
  }

  private input(field: Field): HTMLInputElement | HTMLSelectElement {
    return byId(`ticket-${field}`);
  }

  private async send(): Promise<void> {
    this.clear();
    const key = this.key();
    if (key === null) {
      this.say("paste an API key first");
      return;
    }
    const order = Object.fromEntries(FIELDS.map((f) => [f, this.input(f).value.trim()]));
    this.say("sending");
    const answer = await request("POST", "v1/orders", { key, body: order });
    if (answer.status === 202) {
      const id = (answer.body as { orderId: string }).orderId;
      this.say(`accepted: order ${id} (pending_new)`);
      this.accepted();
      return;
    }
    if (answer.status === 422) {
      const unplaced: string[] = [];
      for (const error of fieldErrors(answer.body)) {
        const field = error.loc[0] === "body" ? error.loc[1] : undefined;
        if (typeof field === "string" && (FIELDS as readonly string[]).includes(field)) {
          this.mark(field as Field, error.msg);
        } else {
          unplaced.push(`${error.loc.join(".")}: ${error.msg}`);
        }
      }
      this.say(unplaced.length ? `rejected: ${unplaced.join("; ")}` : "rejected (422)");
      return;
    }
    this.say(`${answer.status}: ${describe(answer.body)}`);
  }

  private mark(field: Field, message: string): void {
    const error = byId<HTMLElement>(`ticket-${field}-error`);
    error.textContent = error.textContent ? `${error.textContent}; ${message}` : message;
    this.input(field).setAttribute("aria-invalid", "true");
    this.input(field).setAttribute("aria-describedby", error.id);
  }

  private clear(): void {
    for (const field of FIELDS) {
      byId<HTMLElement>(`ticket-${field}-error`).textContent = "";
      this.input(field).removeAttribute("aria-invalid");
    }
    this.say("");
  }

  private say(text: string): void {
    this.result.textContent = text;
  }
}
