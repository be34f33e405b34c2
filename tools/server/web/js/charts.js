// charts.js: time-series line charts and the probes' latency histogram on
// Chart.js (vendor/chart.min.js, a classic script that defines
// window.Chart), updated in place on refresh.

import { fmtNum, fmtTime, fmtMs } from './dom.js';

// Axis and tooltip numbers: grouped integers, or 3 significant digits below 10.
export function fmtAxis(v) {
	if (Math.abs(v) >= 10 || v === 0) return fmtNum(v);
	return String(Number(v.toPrecision(3)));
}

const Chart = window.Chart;

const pad = (n) => String(n).padStart(2, '0');

function tickLabel(t, span) {
	const d = new Date(t * 1000);
	if (span > 2 * 86400) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}h`;
	return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// series: [{label, color, key, axis?, fill?}]; rows: [{t, [key]: value}]
export class TimeChart {
	constructor(canvas, series, opts = {}) {
		this.series = series;
		this.span = 86400;
		const scales = {
			x: {
				type: 'linear',
				grid: { display: false },
				ticks: { maxTicksLimit: 8, callback: (v) => tickLabel(v, this.span), color: '#5b6472', font: { size: 11 } },
			},
			y: {
				beginAtZero: true,
				grid: { color: '#eef0f3' },
				ticks: { maxTicksLimit: 6, callback: (v) => fmtAxis(v), color: '#5b6472', font: { size: 11 } },
			},
		};
		if (series.some((s) => s.axis === 'y2')) {
			scales.y2 = {
				position: 'right',
				beginAtZero: true,
				grid: { display: false },
				ticks: { maxTicksLimit: 6, callback: (v) => fmtAxis(v), color: '#5b6472', font: { size: 11 } },
			};
		}
		this.chart = new Chart(canvas, {
			type: 'line',
			data: {
				datasets: series.map((s) => ({
					label: s.label,
					data: [],
					borderColor: s.color,
					backgroundColor: s.fill ? s.color + '22' : s.color,
					fill: !!s.fill,
					yAxisID: s.axis || 'y',
					borderWidth: 2,
					pointRadius: 0,
					pointHitRadius: 6,
					tension: 0.25,
				})),
			},
			options: {
				responsive: true,
				maintainAspectRatio: false,
				animation: false,
				parsing: false,
				normalized: true,
				interaction: { mode: 'index', intersect: false },
				scales,
				plugins: {
					legend: { display: series.length > 1, position: 'top', align: 'end', labels: { boxWidth: 10, boxHeight: 10, font: { size: 11 } } },
					tooltip: {
						callbacks: {
							title: (items) => (items.length ? fmtTime(items[0].parsed.x) : ''),
							label: (item) => `${item.dataset.label}: ${fmtAxis(item.parsed.y)}`,
						},
					},
				},
				...opts,
			},
		});
	}

	update(rows) {
		rows = rows || [];
		this.span = rows.length > 1 ? rows[rows.length - 1].t - rows[0].t : 3600;
		const x = this.chart.options.scales.x;
		x.min = rows.length ? rows[0].t : undefined;
		x.max = rows.length > 1 ? rows[rows.length - 1].t : undefined;
		this.series.forEach((s, i) => {
			this.chart.data.datasets[i].data = rows.map((r) => ({ x: r.t, y: r[s.key] ?? 0 }));
		});
		this.chart.update('none');
	}

	destroy() {
		this.chart.destroy();
	}
}

// The log2x2-ns buckets of docs/payload.md (runtime/src/contract.h is the
// definition): bucket 0 is [0, 2) ns, bucket 1 is empty, bucket b >= 2
// starts at 2^(b/2) * (1 + (b%2)/2) ns; the last one, 79, is open-ended.
export const HIST_BUCKETS = 80;

export function bucketLowerNs(b) {
	if (b <= 0) return 0;
	if (b === 1) return 2;
	b = Math.min(b, HIST_BUCKETS);
	const e = Math.floor(b / 2);
	return Math.pow(2, e) + (b % 2) * Math.pow(2, e - 1);
}

export function bucketOfMs(ms) {
	const ns = ms * 1e6;
	if (!(ns >= 2)) return 0;
	const e = Math.floor(Math.log2(ns));
	const b = 2 * e + (ns / Math.pow(2, e) >= 1.5 ? 1 : 0);
	return Math.min(b, HIST_BUCKETS - 1);
}

const PCT_COLORS = { p50: '#2f9e5b', p95: '#e0a021', p99: '#d64545' };
export const HIST_COLORS = { bar: '#2457d6', ...PCT_COLORS };

// A bar per bucket from the lowest to the highest one that holds a count
// (empty buckets between them drawn as 0); the buckets that hold the
// p50, p95 and p99 are coloured as the figures above the chart.
export class HistChart {
	constructor(canvas) {
		this.chart = new Chart(canvas, {
			type: 'bar',
			data: { labels: [], datasets: [{ label: 'calls', data: [], backgroundColor: [], barPercentage: 1, categoryPercentage: 0.92 }] },
			options: {
				responsive: true,
				maintainAspectRatio: false,
				animation: false,
				scales: {
					x: { grid: { display: false }, ticks: { maxTicksLimit: 12, color: '#5b6472', font: { size: 11 } } },
					y: { beginAtZero: true, grid: { color: '#eef0f3' }, ticks: { maxTicksLimit: 6, precision: 0, callback: (v) => fmtAxis(v), color: '#5b6472', font: { size: 11 } } },
				},
				plugins: {
					legend: { display: false },
					tooltip: { callbacks: { title: (items) => (items.length ? this.ranges[items[0].dataIndex] : ''), label: (item) => `${fmtNum(item.parsed.y)} calls` } },
				},
			},
		});
		this.ranges = [];
	}

	// pairs: [[bucket, count]...] in any order; pct: {p50_ms, p95_ms, p99_ms}
	update(pairs, pct = {}) {
		const counts = new Map();
		for (const [b, c] of pairs || []) counts.set(b, (counts.get(b) || 0) + c);
		const buckets = [...counts.keys()];
		const lo = buckets.length ? Math.min(...buckets) : 0;
		const hi = buckets.length ? Math.max(...buckets) : -1;
		const mark = {};
		for (const k of ['p50', 'p95', 'p99']) {
			if (pct[k + '_ms'] !== undefined && pct[k + '_ms'] !== null) mark[bucketOfMs(pct[k + '_ms'])] = k;
		}
		const labels = [], data = [], colors = [];
		this.ranges = [];
		for (let b = lo; b <= hi; b++) {
			const from = bucketLowerNs(b) / 1e6, to = bucketLowerNs(b + 1) / 1e6;
			labels.push(fmtMs(from));
			this.ranges.push(b === HIST_BUCKETS - 1 ? `≥ ${fmtMs(from)}` : `${fmtMs(from)} – ${fmtMs(to)}`);
			data.push(counts.get(b) || 0);
			colors.push(PCT_COLORS[mark[b]] || HIST_COLORS.bar);
		}
		const ds = this.chart.data.datasets[0];
		this.chart.data.labels = labels;
		ds.data = data;
		ds.backgroundColor = colors;
		this.chart.update('none');
	}

	destroy() {
		this.chart.destroy();
	}
}
