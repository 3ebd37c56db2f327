// Keeping a correct local book from one book subscription, by the feed's rules (README,
// "Market data"): the snapshot sets the book and its seq; an update applies only when
// its prevSeq is the book's seq; one at or below that seq is stale and dropped; any
// other is a gap: it waits in a buffer while the page asks for the missing messages
// (resync from the book's seq), and applies once its chain reaches it. The checksum is
// verified after every message; a mismatch throws the book away and asks for a snapshot
// (a resync without `from`).

import { LocalBook } from "./book";
import type { BookSnapshot, BookUpdate, Heartbeat } from "./market_messages";

// Updates waiting for the gap before them to fill; past this many, a snapshot is cheaper.
const MAX_BUFFERED = 5000;
// A resync that brought nothing by then is asked for again (on the next sign of a gap).
const RESYNC_RETRY_MS = 3000;

export interface SyncResult {
  /** The book changed: draw it again. */
  changed: boolean;
  /** Ask the venue to resync: from this seq (the messages after it), or a snapshot. */
  resyncFrom: number | "snapshot" | null;
  /** What happened, for the status line; null when nothing worth saying. */
  note: string | null;
}

export class BookSync {
  readonly book = new LocalBook();
  /** The seq the book is at; null until a snapshot arrives. */
  seq: number | null = null;
  /** How many times the book was thrown away because its checksum did not match. */
  checksumFailures = 0;
  private readonly buffered = new Map<number, BookUpdate>(); // by prevSeq
  private resyncAskedAt: number | null = null;

  constructor(private readonly now: () => number = () => Date.now()) {}

  /** A fresh subscription: nothing known until its snapshot. */
  reset(): void {
    this.book.clear();
    this.seq = null;
    this.buffered.clear();
    this.resyncAskedAt = null;
  }

  snapshot(message: BookSnapshot): SyncResult {
    this.book.replace(message.bids, message.asks);
    this.seq = message.seq;
    this.resyncAskedAt = null;
    if (this.book.checksum() !== message.checksum) return this.mismatch(message.seq);
    return this.drain({ changed: true, resyncFrom: null, note: `snapshot at seq ${message.seq}` });
  }

  update(message: BookUpdate): SyncResult {
    if (this.seq === null) {
      // Waiting for the snapshot: what follows it will chain from its seq.
      return this.buffer(message, null);
    }
    if (message.seq <= this.seq) {
      return { changed: false, resyncFrom: null, note: null }; // stale: already in the book
    }
    if (message.prevSeq !== this.seq) {
      return this.buffer(message, this.gap(message.prevSeq));
    }
    const result = this.apply(message);
    return result.resyncFrom === null ? this.drain(result) : result;
  }

  heartbeat(message: Heartbeat): SyncResult {
    if (this.seq === null) {
      // Still no snapshot: ask again once the last ask is old.
      const now = this.now();
      if (this.resyncAskedAt === null || now - this.resyncAskedAt < RESYNC_RETRY_MS) {
        return { changed: false, resyncFrom: null, note: null };
      }
      this.resyncAskedAt = now;
      return { changed: false, resyncFrom: "snapshot", note: null };
    }
    if (message.seq <= this.seq) return { changed: false, resyncFrom: null, note: null };
    return { changed: false, ...this.gap(message.seq) };
  }

  private apply(message: BookUpdate): SyncResult {
    this.book.apply(message.bids, message.asks);
    this.seq = message.seq;
    this.resyncAskedAt = null;
    if (this.book.checksum() !== message.checksum) return this.mismatch(message.seq);
    return { changed: true, resyncFrom: null, note: null };
  }

  /** Apply every buffered update whose chain now reaches the book. */
  private drain(result: SyncResult): SyncResult {
    for (;;) {
      for (const [prevSeq, update] of this.buffered) {
        if (this.seq !== null && update.seq <= this.seq) this.buffered.delete(prevSeq);
      }
      const next = this.seq === null ? undefined : this.buffered.get(this.seq);
      if (next === undefined) return result;
      this.buffered.delete(next.prevSeq);
      const applied = this.apply(next);
      if (applied.resyncFrom !== null) return applied;
      result = { ...result, changed: true };
    }
  }

  private buffer(message: BookUpdate, gap: Omit<SyncResult, "changed"> | null): SyncResult {
    this.buffered.set(message.prevSeq, message);
    if (this.buffered.size > MAX_BUFFERED) {
      this.reset();
      this.resyncAskedAt = this.now();
      return { changed: true, resyncFrom: "snapshot", note: "too far behind: asked for a snapshot" };
    }
    return { changed: false, resyncFrom: null, note: null, ...gap };
  }

  /** A gap after the book's seq: ask for what follows it, unless just asked. */
  private gap(seen: number): Omit<SyncResult, "changed"> {
    const now = this.now();
    if (this.resyncAskedAt !== null && now - this.resyncAskedAt < RESYNC_RETRY_MS) {
      return { resyncFrom: null, note: null };
    }
    this.resyncAskedAt = now;
    return {
      resyncFrom: this.seq,
      note: `gap after seq ${this.seq} (saw ${seen}): resync from ${this.seq}`,
    };
  }

  private mismatch(seq: number): SyncResult {
    this.reset();
    this.checksumFailures += 1;
    this.resyncAskedAt = this.now();
    return {
      changed: true,
      resyncFrom: "snapshot",
      note: `checksum mismatch: resynced (the book at seq ${seq} did not match; asked for a snapshot)`,
    };
  }
}
