// views/debt.js: the debt that hurts.  A heatmap of error rate (y) against
// share of the NSM (x): the top-right cells hold the functions that are both
// fragile and load-bearing.  Plus the debt trajectory and the worst offenders.

import { h, fill, fmtInt, fmtPct, empty } from '../dom.js';
import { TimeChart } from '../charts.js';

const BINS = 10; // docs/api.md: cells {x, y} are bin indices over [0, 1]

// The same binning as the server: share and error rate each in BINS equal bins.
export function binOf(v, n = BINS) {
	return Math.max(0, Math.min(n - 1, Math.floor((v || 0) * n)));
}

function heat(count, max) {
	if (!count) return '';
	const t = Math.log1p(count) / Math.log1p(max || 1); // 0..1
	const light = 94 - 52 * t;
	return `hsl(${28 - 24 * t}, 85%, ${light}%)`;
}

export default {
	id: 'debt',
	title: 'Debt that hurts',

	mount(root, ctx) {
		this.map = h('div', { class: 'heatmap', id: 'heatmap' });
		this.tip = h('div', { class: 'hm-tip', hidden: true });
		this.pinned = h('div', { class: 'hm-pinned' });
		this.canvas = h('canvas', { id: 'debt-trend' });
		this.top = h('div');
		fill(root,
			h('div', { class: 'grid-2' },
				h('section', { class: 'card' },
					h('div', { class: 'card-title' }, 'Error rate × share of NSM'),
					h('div', { class: 'hm-wrap' }, h('div', { class: 'hm-axis-y' }, 'error rate →'), this.map, this.tip, h('div', { class: 'hm-axis-x' }, 'share of NSM →')),
					h('p', { class: 'hint' }, 'Each cell counts functions. Top right: fragile and load-bearing — fix these first. Hover a cell to list its functions, click to keep the list.'),
					this.pinned),
				h('div', {},
					h('section', { class: 'card' },
						h('div', { class: 'card-title' }, 'Debt trajectory (Σ error rate × share)'),
						h('div', { class: 'chart-box chart-small' }, this.canvas)),
					h('section', { class: 'card' },
						h('div', { class: 'card-title' }, 'Highest debt'),
						this.top))));
		this.chart = new TimeChart(this.canvas, [{ label: 'debt', key: 'debt', color: '#c2410c', fill: true }]);
		this.ctx = ctx;
	},

	async refresh(ctx) {
		const data = await ctx.api('debt', { window: ctx.window });
		this.chart.update(data.trajectory);
		this.renderMap(data);
		const worst = [...data.points].filter((p) => p.debt > 0).sort((a, b) => b.debt - a.debt).slice(0, 12);
		fill(this.top, worst.length ? h('table', { class: 'grid', id: 'debt-top' },
			h('thead', {}, h('tr', {}, h('th', {}, 'function'), h('th', { class: 'num' }, 'error rate'),
				h('th', { class: 'num' }, 'share'), h('th', { class: 'num' }, 'debt'), h('th', {}, ''))),
			h('tbody', {}, worst.map((p) => h('tr', {},
				h('td', { class: 'fn' }, p.name),
				h('td', { class: 'num' }, fmtPct(p.error_rate, 2)),
				h('td', { class: 'num' }, fmtPct(p.share)),
				h('td', { class: 'num' }, p.debt.toFixed(4)),
				h('td', { class: 'actions' }, h('button', { class: 'btn btn-small', onclick: () => ctx.select(p.name, 'prompt') }, 'fix prompt')))))) :
			empty('No debt: nothing failed in this window.'));
	},

	renderMap(data) {
		let n = BINS;
		for (const c of data.cells) n = Math.max(n, c.x + 1, c.y + 1);
		const byCell = new Map();
		for (const c of data.cells) byCell.set(`${c.x},${c.y}`, c.count);
		const members = new Map();
		for (const p of data.points) {
			const k = `${binOf(p.share, n)},${binOf(p.error_rate, n)}`;
			if (!members.has(k)) members.set(k, []);
			members.get(k).push(p);
		}
		const max = Math.max(1, ...data.cells.map((c) => c.count));
		const step = 1 / n;
		const range = (i) => `${fmtPct(i * step, 0)}–${fmtPct((i + 1) * step, 0)}`;
		const kids = [];
		for (let y = n - 1; y >= 0; y--) {
			kids.push(h('div', { class: 'hm-ylab' }, y % 2 === 1 || n <= 10 ? fmtPct((y + 1) * step, 0) : ''));
			for (let x = 0; x < n; x++) {
				const k = `${x},${y}`;
				const count = byCell.get(k) || 0;
				const danger = x + y >= n; // the upper-right triangle
				const cell = h('div', {
					class: ['hm-cell', count && 'hm-full', danger && 'hm-danger'],
					dataset: { x: String(x), y: String(y), count: String(count) },
					style: { backgroundColor: heat(count, max) },
				}, count ? fmtInt(count) : '');
				if (count) {
					const list = members.get(k) || [];
					const head = `error rate ${range(y)} · share ${range(x)} · ${fmtInt(count)} function${count === 1 ? '' : 's'}`;
					cell.addEventListener('mouseenter', () => this.showTip(cell, head, list));
					cell.addEventListener('mouseleave', () => { this.tip.hidden = true; });
					cell.addEventListener('click', () => this.pin(head, list));
				}
				kids.push(cell);
			}
		}
		kids.push(h('div', {}));
		for (let x = 0; x < n; x++) kids.push(h('div', { class: 'hm-xlab' }, x % 2 === 1 || n <= 10 ? fmtPct((x + 1) * step, 0) : ''));
		fill(this.map, kids);
		this.map.style.gridTemplateColumns = `44px repeat(${n}, 1fr)`;
		if (!data.points.length) this.pin('', []);
	},

	names(list) {
		const sorted = [...list].sort((a, b) => b.debt - a.debt);
		return h('ul', { class: 'hm-list' },
			sorted.slice(0, 15).map((p) => h('li', {}, h('span', { class: 'fn' }, p.name), h('span', { class: 'muted' }, ` ${fmtPct(p.error_rate, 1)} err · ${fmtPct(p.share, 1)} share`))),
			sorted.length > 15 ? h('li', { class: 'muted' }, `+${sorted.length - 15} more`) : null);
	},

	showTip(cell, head, list) {
		fill(this.tip, h('div', { class: 'hm-tip-head' }, head), this.names(list));
		this.tip.hidden = false;
		const wrap = this.tip.parentElement.getBoundingClientRect();
		const r = cell.getBoundingClientRect();
		let left = r.right - wrap.left + 6;
		if (left + 280 > wrap.width) left = Math.max(0, r.left - wrap.left - 286);
		this.tip.style.left = left + 'px';
		this.tip.style.top = Math.max(0, r.top - wrap.top) + 'px';
	},

	pin(head, list) {
		if (!head) return fill(this.pinned);
		fill(this.pinned, h('div', { class: 'hm-tip-head' }, head), this.names(list));
	},
};
