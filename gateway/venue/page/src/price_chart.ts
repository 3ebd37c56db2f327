// The price chart: the symbol's candles, and the volume under them. Drawing is the one
// place prices become numbers.

import {
  CandlestickSeries, ColorType, createChart, HistogramSeries, type CandlestickData,
  type HistogramData, type IChartApi, type ISeriesApi, type UTCTimestamp,
} from "lightweight-charts";
import type { Candle } from "./candles";

const UP = "#26a69a";
const DOWN = "#ef5350";

export class PriceChart {
  private readonly chart: IChartApi;
  private readonly prices: ISeriesApi<"Candlestick">;
  private readonly volumes: ISeriesApi<"Histogram">;

  constructor(container: HTMLElement) {
    this.chart = createChart(container, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "#10151c" }, textColor: "#c8d0da" },
      grid: { vertLines: { color: "#1c2530" }, horzLines: { color: "#1c2530" } },
      // Room after the last candle: the live one is never against the edge.
      timeScale: { timeVisible: true, secondsVisible: false, rightOffset: 8, barSpacing: 12 },
      rightPriceScale: { scaleMargins: { top: 0.1, bottom: 0.25 } },
    });
    this.prices = this.chart.addSeries(CandlestickSeries, {
      upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
    });
    this.volumes = this.chart.addSeries(HistogramSeries, {
      priceScaleId: "volume", priceFormat: { type: "volume" }, lastValueVisible: false,
      priceLineVisible: false,
    });
    this.chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  }

  show(candles: readonly Candle[]): void {
    this.prices.setData(candles.map(priceBar));
    this.volumes.setData(candles.map(volumeBar));
    this.chart.timeScale().scrollToRealTime();
  }

  /** The last candle changed, or a new one began. */
  update(candle: Candle): void {
    this.prices.update(priceBar(candle));
    this.volumes.update(volumeBar(candle));
  }
}

function priceBar(candle: Candle): CandlestickData<UTCTimestamp> {
  return {
    time: candle.time as UTCTimestamp, open: Number(candle.open), high: Number(candle.high),
    low: Number(candle.low), close: Number(candle.close),
  };
}

function volumeBar(candle: Candle): HistogramData<UTCTimestamp> {
  const up = Number(candle.close) >= Number(candle.open);
  return {
    time: candle.time as UTCTimestamp, value: Number(candle.volume),
    color: up ? "rgba(38,166,154,0.45)" : "rgba(239,83,80,0.45)",
  };
}
