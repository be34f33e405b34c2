// views/underuse.js: dead weight.  Functions called fewer than `threshold`
// times in 30 days, and inventory functions never called at all.

import { h, fill, fmtInt, fileLine, empty } from '../dom.js';

export default {
	id: 'underuse',
	title: 'Underuse',

	mount(root, ctx) {
		this.threshold = h('input', { type: 'number', min: '1', step: '1', value: String(ctx.threshold), class: 'input input-num', id: 'underuse-threshold' });
		const apply = () => {
			const v = parseInt(this.threshold.value, 10);
			if (v > 0) { ctx.threshold = v; ctx.refreshView(); }
		};
		this.threshold.addEventListener('change', apply);
		this.under = h('div');
		this.never = h('div');
		this.underTitle = h('div', { class: 'card-title' });
		this.neverTitle = h('div', { class: 'card-title' });
		fill(root,
			h('section', { class: 'card' }, h('div', { class: 'toolbar' },
				h('label', { class: 'muted' }, 'Underused means fewer than ', this.threshold, ' calls in the last 30 days.'),
				h('span', { class: 'spacer' }),
				h('span', { class: 'muted' }, 'Candidates to retire: check with their owners first.'))),
			h('div', { class: 'grid-2' },
				h('section', { class: 'card' }, this.underTitle, this.under),
				h('section', { class: 'card' }, this.neverTitle, this.never)));
	},

	async refresh(ctx) {
		const data = await ctx.api('underuse', { window: ctx.window, threshold: ctx.threshold });
		this.underTitle.textContent = `Underused (${fmtInt(data.underused.length)})`;
		this.neverTitle.textContent = `Never called (${fmtInt(data.never_called.length)})`;
		const under = [...data.underused].sort((a, b) => a.calls_30d - b.calls_30d);
		fill(this.under, under.length ? h('table', { class: 'grid', id: 'underused-table' },
			h('thead', {}, h('tr', {}, h('th', {}, 'function'), h('th', { class: 'num' }, 'calls in 30 d'), h('th', {}, 'file:line'))),
			h('tbody', {}, under.map((r) => h('tr', { class: 'clickable', onclick: () => ctx.select(r.name, 'graph') },
				h('td', { class: 'fn' }, r.name),
				h('td', { class: 'num' }, fmtInt(r.calls_30d)),
				h('td', { class: 'file' }, fileLine(r.file, r.line)))))) :
			empty(`No function under ${data.threshold} calls.`));
		fill(this.never, data.never_called.length ? h('table', { class: 'grid', id: 'never-table' },
			h('thead', {}, h('tr', {}, h('th', {}, 'function'), h('th', {}, 'department'), h('th', {}, 'file:line'))),
			h('tbody', {}, data.never_called.map((r) => h('tr', {},
				h('td', { class: 'fn' }, r.name),
				h('td', {}, r.department),
				h('td', { class: 'file' }, fileLine(r.file, r.line)))))) :
			empty('Every function in the inventory has been called.'));
	},
};
