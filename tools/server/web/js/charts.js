// charts.js: time-series line charts on Chart.js (vendor/chart.min.js, a
// classic script that defines window.Chart), updated in place on refresh.

import { fmtNum, fmtTime } from './dom.js';

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
