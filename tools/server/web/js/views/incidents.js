// views/incidents.js: the failure chains the runtime reported, caller first
// and the failing function last, with how often and when.

import { h, fill, fmtInt, fileLine, timeEl, fmtTime, empty } from '../dom.js';

const KIND = { error: 'error', exception: 'exception', signal: 'signal' };

export default {
	id: 'incidents',
	title: 'Incidents',

	mount(root) {
		this.list = h('div', { class: 'incidents', id: 'incidents' });
		this.title = h('div', { class: 'card-title' }, 'Incidents');
		fill(root, h('section', { class: 'card' }, this.title, this.list));
	},

	async refresh(ctx) {
		const data = await ctx.api('incidents', { window: ctx.window });
		const rows = [...data.incidents].sort((a, b) => b.last_seen - a.last_seen);
		this.title.textContent = `Incidents (${fmtInt(rows.length)})`;
		fill(this.list, rows.length ? rows.map((inc) => {
			const chain = inc.chain || [];
			const failing = chain.length ? chain[chain.length - 1].name : '';
			return h('article', { class: 'incident', dataset: { id: String(inc.id) } },
				h('div', { class: 'incident-head' },
					h('span', { class: ['badge', 'kind-' + (KIND[inc.kind] || 'error')] }, inc.kind === 'signal' && inc.signal ? `signal ${inc.signal}` : inc.kind),
					h('span', { class: 'fn incident-fn' }, failing),
					h('span', { class: 'spacer' }),
					h('span', { class: 'incident-count' }, `×${fmtInt(inc.count)}`),
					h('span', { class: 'muted', title: fmtTime(inc.first_seen) }, 'first ', timeEl(inc.first_seen)),
					h('span', { class: 'muted' }, 'last ', timeEl(inc.last_seen)),
					failing ? h('button', { class: 'btn btn-small', onclick: () => ctx.select(failing, 'prompt') }, 'fix prompt') : null),
				h('ol', { class: 'chain' }, chain.map((f, i) => h('li', { class: i === chain.length - 1 ? 'chain-fail' : '' },
					h('span', { class: 'fn' }, f.name),
					h('span', { class: 'file' }, fileLine(f.file, f.line))))));
		}) : empty('No incidents in this window.'));
	},
};
