// The feed's book checksum, the one place the page computes it (README, "Market data"):
// CRC-32 (IEEE 802.3, zlib's crc32) of the top CHECKSUM_DEPTH bids, best first, "|",
// the top CHECKSUM_DEPTH asks, best first; each level "price:quantity" in the feed's own
// decimal strings, the levels of a side joined by ",".

/** A price level as the feed sends it: [price, quantity], decimal strings. */
export type Level = readonly [price: string, quantity: string];

export const CHECKSUM_DEPTH = 10;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
    }
    table[byte] = crc >>> 0;
  }
  return table;
})();

/** CRC-32 of ASCII text, as an unsigned integer (what zlib.crc32 returns). */
export function crc32(text: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) {
    crc = (CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] ?? 0) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

export function checksumText(bids: readonly Level[], asks: readonly Level[]): string {
  const side = (levels: readonly Level[]) =>
    levels.slice(0, CHECKSUM_DEPTH).map(([price, quantity]) => `${price}:${quantity}`).join(",");
  return `${side(bids)}|${side(asks)}`;
}

/** The checksum of a book whose sides are given best first. */
export function bookChecksum(bids: readonly Level[], asks: readonly Level[]): number {
  return crc32(checksumText(bids, asks));
}
