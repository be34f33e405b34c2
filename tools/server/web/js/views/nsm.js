// views/nsm.js: the North-Star Metric for the window, its trend, and who earns it.

import { h, fill, fmtInt, fmtNum, fmtPct, bar, empty } from '../dom.js';
import { TimeChart } from '../charts.js';

const WINDOW_TEXT = { '1h': 'last hour', '24h': 'last 24 hours', '7d': 'last 7 days', '30d': 'last 30 days' };

export default {
	id: 'nsm',
	title: 'North Star',

	mount(root, ctx) {
		this.value = h('div', { id: 'nsm-value', class: 'nsm-value' }, '–');
		this.caption = h('div', { class: 'nsm-caption' });
		this.stats = h('div', { class: 'nsm-stats' });
		this.nsmCanvas = h('canvas', { id: 'nsm-trend' });
		this.callsCanvas = h('canvas', { id: 'calls-trend' });
		this.top = h('div');
		this.depts = h('div');
		fill(root,
			h('div', { class: 'grid-nsm' },
				h('section', { class: 'card nsm-card' },
					h('div', { class: 'card-title' }, 'North-Star Metric'),
					this.value,
					this.caption,
					this.stats),
				h('section', { class: 'card' },
					h('div', { class: 'card-title' }, 'NSM over time'),
					h('div', { class: 'chart-box' }, this.nsmCanvas))),
			h('div', { class: 'grid-2' },
				h('section', { class: 'card' },
					h('div', { class: 'card-title' }, 'Calls and errors over time'),
					h('div', { class: 'chart-box chart-small' }, this.callsCanvas)),
				h('section', { class: 'card' },
					h('div', { class: 'card-title' }, 'Share of the NSM by department'),
					this.depts)),
			h('section', { class: 'card' },
				h('div', { class: 'card-title' }, 'Top contributors'),
				this.top));
		this.nsmChart = new TimeChart(this.nsmCanvas, [{ label: 'NSM', key: 'nsm', color: '#2457d6', fill: true }]);
		this.callsChart = new TimeChart(this.callsCanvas, [
			{ label: 'calls', key: 'calls', color: '#2f8f5b' },
			{ label: 'errors', key: 'errors', color: '#d64545', axis: 'y2' },
		]);
	},

	async refresh(ctx) {
		const [sum, deps, top] = await Promise.all([
			ctx.api('summary', { window: ctx.window }),
			ctx.api('departments', { window: ctx.window }),
			ctx.api('functions', { window: ctx.window, sort: 'nsm', order: 'desc', limit: 10 }),
		]);
		this.value.textContent = fmtNum(sum.nsm);
		this.value.dataset.value = String(sum.nsm);
		this.caption.textContent = `Σ value_weight × successful calls, ${WINDOW_TEXT[sum.window] || sum.window}`;
		const rate = sum.calls ? sum.errors / sum.calls : 0;
		fill(this.stats,
			stat('calls', fmtInt(sum.calls), 'sum-calls'),
			stat('errors', fmtInt(sum.errors), 'sum-errors'),
			stat('error rate', fmtPct(rate, 2), 'sum-rate'),
			stat('functions', fmtInt(sum.functions), 'sum-functions'),
			stat('departments', fmtInt(sum.departments), 'sum-departments'));
		this.nsmChart.update(sum.trend);
		this.callsChart.update(sum.trend);

		const drows = [...deps.departments].sort((a, b) => b.nsm - a.nsm);
		fill(this.depts, drows.length ? h('table', { class: 'mini' },
			h('tbody', {}, drows.map((d) => h('tr', {},
				h('td', { class: 'name' }, d.department),
				h('td', { class: 'wide' }, bar(d.share, 'bar-blue')),
				h('td', { class: 'num' }, fmtPct(d.share)),
				h('td', { class: 'num muted' }, fmtNum(d.nsm)))))) : empty('No departments yet.'));

		fill(this.top, top.rows.length ? h('table', { class: 'grid' },
			h('thead', {}, h('tr', {},
				h('th', {}, 'function'), h('th', {}, 'department'), h('th', { class: 'num' }, 'calls'),
				h('th', { class: 'num' }, 'value weight'), h('th', { class: 'num' }, 'NSM'), h('th', {}, 'share'))),
			h('tbody', {}, top.rows.map((r) => h('tr', { class: 'clickable', onclick: () => ctx.select(r.name, 'graph') },
				h('td', { class: 'fn' }, r.name),
				h('td', {}, r.department),
				h('td', { class: 'num' }, fmtInt(r.calls)),
				h('td', { class: 'num' }, fmtNum(r.value_weight)),
				h('td', { class: 'num' }, fmtNum(r.nsm)),
				h('td', { class: 'share-cell' }, bar(r.share, 'bar-blue'), h('span', { class: 'num' }, fmtPct(r.share))))))) :
			empty('No calls in this window yet.'));
	},
};

function stat(label, value, id) {
	return h('div', { class: 'stat' }, h('div', { class: 'stat-value', id }, value), h('div', { class: 'stat-label' }, label));
}
