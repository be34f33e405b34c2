// views/departments.js: each department's utilisation, reliability, speed,
// share of the NSM and OEE, as cards (the glance) and a table (the numbers).

import { h, fill, fmtInt, fmtNum, fmtPct, fmtMs, bar, empty } from '../dom.js';

function oeeClass(x) {
	return x >= 0.85 ? 'good' : x >= 0.6 ? 'fair' : 'poor';
}

export default {
	id: 'departments',
	title: 'Departments',

	mount(root) {
		this.cards = h('div', { class: 'dept-cards' });
		this.table = h('div');
		fill(root,
			this.cards,
			h('section', { class: 'card' }, h('div', { class: 'card-title' }, 'All departments'), this.table));
	},

	async refresh(ctx) {
		const data = await ctx.api('departments', { window: ctx.window });
		const rows = [...data.departments].sort((a, b) => b.nsm - a.nsm || b.calls - a.calls);
		if (!rows.length) {
			fill(this.cards, empty('No departments yet: nothing has reported in this window.'));
			fill(this.table);
			return;
		}
		fill(this.cards, rows.map((d) => h('section', { class: 'card dept-card' },
			h('div', { class: 'dept-head' },
				h('span', { class: 'dept-name' }, d.department),
				h('span', { class: 'muted nowrap' }, `${fmtInt(d.functions)} function${d.functions === 1 ? '' : 's'}`)),
			h('div', { class: 'dept-main' },
				h('div', {},
					h('div', { class: 'big' }, fmtPct(d.share)),
					h('div', { class: 'stat-label' }, 'share of NSM')),
				h('div', {},
					h('div', { class: ['big', 'oee-' + oeeClass(d.oee)] }, fmtPct(d.oee, 0)),
					h('div', { class: 'stat-label' }, 'OEE'))),
			bar(d.share, 'bar-blue'),
			h('dl', { class: 'kv' },
				h('dt', {}, 'calls'), h('dd', {}, fmtInt(d.calls)),
				h('dt', {}, 'reliability'), h('dd', {}, fmtPct(d.reliability, 2)),
				h('dt', {}, 'p95'), h('dd', {}, fmtMs(d.p95_ms)),
				h('dt', {}, 'availability'), h('dd', {}, fmtPct(d.availability, 0)),
				h('dt', {}, 'performance'), h('dd', {}, fmtPct(d.performance, 0)),
				h('dt', {}, 'NSM'), h('dd', {}, fmtNum(d.nsm))))));

		const cols = [
			['department', (d) => d.department, 'name'],
			['functions', (d) => fmtInt(d.functions), 'num'],
			['calls', (d) => fmtInt(d.calls), 'num'],
			['errors', (d) => fmtInt(d.errors), 'num'],
			['reliability', (d) => fmtPct(d.reliability, 2), 'num'],
			['p95', (d) => fmtMs(d.p95_ms), 'num'],
			['NSM', (d) => fmtNum(d.nsm), 'num'],
			['share', (d) => fmtPct(d.share), 'num'],
			['availability', (d) => fmtPct(d.availability, 0), 'num'],
			['performance', (d) => fmtPct(d.performance, 0), 'num'],
			['OEE', (d) => fmtPct(d.oee, 0), 'num'],
		];
		fill(this.table, h('table', { class: 'grid', id: 'dept-table' },
			h('thead', {}, h('tr', {}, cols.map(([t, , c]) => h('th', { class: c }, t)))),
			h('tbody', {}, rows.map((d) => h('tr', {}, cols.map(([, f, c]) => h('td', { class: c }, f(d))))))));
	},
};
