// The price chart: candles and volume read over REST (GET /api/v1/instruments/{symbol}/bars),
// then moved by the forming 1-minute bar of the `bars:<SYMBOL>` channel. Drawn on a canvas by
// TradingView Lightweight Charts (vendor/README.md); times are UTC, as the API's.

import {CandlestickSeries, HistogramSeries, createChart}
  from "./vendor/lightweight-charts.standalone.production.mjs";

/** Timeframes and their bucket lengths in seconds (a day is New York's calendar day). */
export const TIMEFRAMES = {"1Min": 60, "5Min": 300, "15Min": 900, "1Hour": 3600, "1Day": 86400};
export const HISTORY = 300; // bars per load

const NY_DATE = new Intl.DateTimeFormat("en-CA", {timeZone: "America/New_York"}); // 2026-11-29

/** The start (seconds) of the bucket holding `t`: a UTC boundary, or New York's midnight. */
export function bucketStart(t, timeframe) {
  if (timeframe !== "1Day") return t - (t % TIMEFRAMES[timeframe]);
  const day = NY_DATE.format(t * 1000);
  for (const hour of ["04", "05"]) { // midnight in New York, summer or winter
    const start = Date.parse(`${day}T${hour}:00:00Z`) / 1000;
    if (NY_DATE.format(start * 1000) === day && NY_DATE.format(start * 1000 - 1) !== day) return start;
  }
  throw new Error(`no New York midnight on ${day}`);
}

/** A bar of the API (decimal strings, RFC 3339 time) as chart numbers, time in seconds. */
function toCandle(bar) {
  return {time: Date.parse(bar.t) / 1000, open: Number(bar.o), high: Number(bar.h),
    low: Number(bar.l), close: Number(bar.c), volume: Number(bar.v)};
}

const decimals = (text) => (String(text).split(".")[1] ?? "").length;

export class PriceChart {
  /**
   * @param {HTMLElement} box  where the chart draws (sized by CSS)
   * @param {HTMLElement} legend  the text of the last (or pointed-at) bar
   * @param {(symbol: string, timeframe: string) => Promise<{bars: object[]}>} load
   */
  constructor(box, legend, load) {
    this.legend = legend;
    this.load = load;
    this.symbol = null;
    this.timeframe = "1Min";
    this.ready = false; // history of the current symbol and timeframe is drawn
    this.last = null; // the newest candle drawn
    this.precision = 2;
    this._minute = null; // the last live minute folded into a longer bar
    this._pointing = false; // the legend describes the bar under the pointer
    this._refetch = false; // the history was empty: read it again when bars start
    this._generation = 0;
    this.chart = createChart(box, {
      autoSize: true,
      // The built-in logo injects an inline <style>, which the page's CSP refuses: index.html
      // links to TradingView under the chart instead, as the license asks.
      layout: {attributionLogo: false, fontFamily: getComputedStyle(box).fontFamily},
      timeScale: {timeVisible: true, secondsVisible: false, rightOffset: 3},
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {priceLineVisible: false});
    this.candles.priceScale().applyOptions({scaleMargins: {top: 0.08, bottom: 0.24}});
    this.volume = this.chart.addSeries(HistogramSeries, {priceScaleId: "volume",
      priceFormat: {type: "volume"}, lastValueVisible: false, priceLineVisible: false});
    this.chart.priceScale("volume").applyOptions({scaleMargins: {top: 0.82, bottom: 0}});
    this.chart.subscribeCrosshairMove((p) =>
      this._describe(p.seriesData?.get(this.candles), p.seriesData?.get(this.volume)?.value));
    matchMedia("(prefers-color-scheme: light)").addEventListener("change", () => this.restyle());
    this.restyle();
  }

  /** Follow the page's theme: the canvas cannot read CSS variables by itself. */
  restyle() {
    const css = getComputedStyle(document.documentElement);
    const v = (name) => css.getPropertyValue(name).trim();
    const [up, down, line] = [v("--up"), v("--down"), v("--line")];
    this.chart.applyOptions({
      layout: {background: {type: "solid", color: v("--card")}, textColor: v("--muted")},
      grid: {vertLines: {color: line}, horzLines: {color: line}},
      rightPriceScale: {borderColor: line},
      timeScale: {borderColor: line},
    });
    this.candles.applyOptions({upColor: up, downColor: down, borderUpColor: up,
      borderDownColor: down, wickUpColor: up, wickDownColor: down});
    this.volume.applyOptions({color: `${v("--muted")}55`});
  }

  /** Show `symbol` in `timeframe`: read its history; live bars are ignored until it is drawn. */
  async show(symbol, timeframe = this.timeframe) {
    const generation = ++this._generation;
    Object.assign(this, {symbol, timeframe, ready: false, last: null, _minute: null});
    let bars = [];
    try {
      bars = (await this.load(symbol, timeframe)).bars;
    } finally {
      // Unless a later choice is loading. A failed read leaves the chart empty: see onBar.
      if (generation === this._generation) this._draw(bars);
    }
  }

  _draw(bars) {
    const candles = bars.map(toCandle);
    const newest = bars.at(-1);
    this.precision = newest ? Math.max(...["o", "h", "l", "c"].map((k) => decimals(newest[k]))) : 2;
    this.candles.applyOptions({priceFormat: {type: "price", precision: this.precision,
      minMove: 10 ** -this.precision}});
    this.chart.applyOptions({timeScale: {timeVisible: this.timeframe !== "1Day"}});
    this.candles.setData(candles.map(({volume, ...ohlc}) => ohlc));
    this.volume.setData(candles.map((c) => ({time: c.time, value: c.volume})));
    this.chart.timeScale().scrollToRealTime();
    this.last = candles.at(-1) ?? null;
    this.ready = true;
    this._refetch = !this.last;
    this._describe(null);
  }

  /** Forget the symbol and its bars (logout). */
  clear() {
    this._generation += 1;
    Object.assign(this, {symbol: null, ready: false, last: null, _minute: null});
    this.candles.setData([]);
    this.volume.setData([]);
    this._describe(null);
  }

  /** Read the history again (after a reconnect: minutes may have been missed meanwhile). */
  reload() {
    return this.symbol ? this.show(this.symbol) : Promise.resolve();
  }

  /**
   * A forming 1-minute bar from `bars:<SYMBOL>`. In 1Min it replaces the chart's last candle
   * (or follows it). In a longer timeframe it is folded into the bucket's candle: high, low and
   * close are the same however often a snapshot of the minute is folded, and the volume grows
   * by what the minute gained since its previous snapshot.
   */
  onBar(bar) {
    if (!this.ready || bar.symbol !== this.symbol) return;
    if (this._refetch) {
      // No history yet (the feed publishes bars once its own is loaded), or the read failed.
      this.reload().catch(() => {}); // still nothing: the next bar tries again
      return;
    }
    const minute = toCandle(bar);
    const time = bucketStart(minute.time, this.timeframe);
    const last = this.last;
    if (last && time < last.time) return; // older than the chart
    let next;
    if (this.timeframe === "1Min" || !last || time > last.time) {
      next = {...minute, time};
    } else {
      const seen = this._minute;
      // A load's first snapshot is already counted in the REST bar, as far as the store had it.
      const gained = seen === null ? 0 : seen.time === minute.time ? minute.volume - seen.volume
        : minute.volume;
      next = {time, open: last.open, high: Math.max(last.high, minute.high),
        low: Math.min(last.low, minute.low), close: minute.close, volume: last.volume + gained};
    }
    this._minute = minute;
    this.last = next;
    const {volume, ...ohlc} = next;
    this.candles.update(ohlc);
    this.volume.update({time: next.time, value: volume});
    if (!this._pointing) this._describe(null);
  }

  /** The legend: the bar under the pointer, else the newest. */
  _describe(pointed, pointedVolume) {
    this._pointing = Boolean(pointed);
    const c = pointed ? {...pointed, volume: pointedVolume} : this.last;
    if (!c) {
      this.legend.textContent = this.symbol ? `${this.symbol}: no bars yet` : "";
      return;
    }
    const p = (x) => x.toFixed(this.precision);
    const v = c.volume?.toLocaleString("en-US", {maximumFractionDigits: 4}) ?? "—";
    this.legend.textContent =
      `O ${p(c.open)}  H ${p(c.high)}  L ${p(c.low)}  C ${p(c.close)}  V ${v}`;
  }
}
