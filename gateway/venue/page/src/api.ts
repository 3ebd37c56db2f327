// The venue's REST API, from the page's own origin: every URL is relative to the page,
// so the page works wherever the gateway (or a proxy in front of it) serves it.

export function apiUrl(path: string): string {
  return new URL(path, document.baseURI).toString();
}

/** ws:// or wss:// as the page came by http:// or https://. */
export function socketUrl(path: string): string {
  const url = new URL(path, document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

/** One error of a 422, as FastAPI words it: `loc` names the field. */
export interface FieldError {
  loc: (string | number)[];
  msg: string;
  type: string;
}

export interface Answer {
  status: number;
  body: unknown;
}

export async function request(method: string, path: string, options: {
  key?: string | null;
  body?: unknown;
} = {}): Promise<Answer> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (options.key) headers["Authorization"] = `Bearer ${options.key}`;
  const init: RequestInit = { method, headers };
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(apiUrl(path), init);
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text === "" ? null : JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body };
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly body: unknown) {
    super(`${status}: ${describe(body)}`);
  }
}

/** GET a JSON document, or throw ApiError. */
export async function getJson<T>(path: string, key?: string | null): Promise<T> {
  const answer = await request("GET", path, { key: key ?? null });
  if (answer.status !== 200) throw new ApiError(answer.status, answer.body);
  return answer.body as T;
}

/** What an error body says, in one line. */
export function describe(body: unknown): string {
  if (body !== null && typeof body === "object" && "detail" in body) {
    const detail = (body as { detail: unknown }).detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((e: Partial<FieldError>) => e.msg ?? JSON.stringify(e)).join("; ");
    }
    return JSON.stringify(detail);
  }
  return typeof body === "string" ? body : JSON.stringify(body);
}

/** The field errors of a 422 body ({"detail": [{loc, msg, type}, ...]}). */
export function fieldErrors(body: unknown): FieldError[] {
  if (body === null || typeof body !== "object" || !("detail" in body)) return [];
  const detail = (body as { detail: unknown }).detail;
  return Array.isArray(detail)
    ? detail.filter((e): e is FieldError => e !== null && typeof e === "object" && "loc" in e)
    : [];
}
