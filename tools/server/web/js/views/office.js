// views/office.js: departments as rooms, functions as desks coloured by their
// live state: the picture a manager glances at.

import { h, fill, fmtInt, empty, STATES, STATE_LABEL } from '../dom.js';

const MAX_DESKS = 600; // per room; beyond that the room says "+N more"

export default {
	id: 'office',
	title: 'Office',

	mount(root) {
		this.legend = h('div', { class: 'legend' });
		this.floor = h('div', { class: 'floor', id: 'office-floor' });
		fill(root, h('section', { class: 'card' },
			h('div', { class: 'toolbar' }, h('div', { class: 'card-title' }, 'The office'), h('span', { class: 'spacer' }), this.legend),
			this.floor));
	},

	async refresh(ctx) {
		const data = await ctx.api('office', { window: ctx.window });
		const total = Object.fromEntries(STATES.map((s) => [s, 0]));
		for (const d of data.departments) for (const f of d.functions) total[f.state] = (total[f.state] || 0) + 1;
		fill(this.legend, STATES.map((s) => h('span', { class: 'legend-item' },
			h('span', { class: ['desk-dot', 'st-' + s] }), `${STATE_LABEL[s]} ${fmtInt(total[s])}`)));
		if (!data.departments.length) {
			fill(this.floor, empty('The office is empty: no function has reported yet.'));
			return;
		}
		fill(this.floor, data.departments.map((d) => {
			const fns = d.functions;
			const roomy = fns.length <= 24;
			const counts = {};
			for (const f of fns) counts[f.state] = (counts[f.state] || 0) + 1;
			return h('div', { class: ['room', counts.failing && 'room-alert'], dataset: { department: d.department } },
				h('div', { class: 'room-head' },
					h('span', { class: 'room-name' }, d.department),
					h('span', { class: 'muted' }, `${fmtInt(fns.length)} desk${fns.length === 1 ? '' : 's'}`),
					counts.failing ? h('span', { class: 'badge st-failing' }, `${counts.failing} failing`) : null),
				h('div', { class: ['desks', roomy && 'desks-roomy'] },
					fns.slice(0, MAX_DESKS).map((f) => h('button', {
						class: ['desk', 'st-' + f.state],
						title: `${f.name}\n${STATE_LABEL[f.state] || f.state} · ${fmtInt(f.calls)} calls`,
						dataset: { name: f.name },
						onclick: () => ctx.select(f.name, 'graph'),
					}, roomy ? h('span', { class: 'desk-name' }, shortName(f.name)) : null)),
					fns.length > MAX_DESKS ? h('span', { class: 'muted' }, `+${fmtInt(fns.length - MAX_DESKS)} more`) : null));
		}));
	},
};

// "checkout.cart.total" -> "total": the desk shows the last part, the title the rest.
function shortName(name) {
	const parts = String(name).split(/[.:/]+/).filter(Boolean);
	return parts.length ? parts[parts.length - 1] : name;
}
