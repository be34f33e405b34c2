// views/incidents.js: the failure chains the runtime reported, caller first
// and the failing function last, with how often and when; for each, its
// root cause in three levels on demand, and a probe on the failing function.
// The project's automatic-probe setting sits on top.

import { h, fill, fmtInt, fileLine, timeEl, fmtTime, empty } from '../dom.js';
import { apiWrite, canManage } from '../api.js';
import { rcaLevels } from '../rca.js';

const KIND = { error: 'error', exception: 'exception', signal: 'signal' };

export default {
	id: 'incidents',
	title: 'Incidents',

	mount(root, ctx) {
		this.open = new Set(); // incident ids whose root cause is shown
		this.list = h('div', { class: 'incidents', id: 'incidents' });
		this.title = h('div', { class: 'card-title' }, 'Incidents');
		this.auto = h('input', { type: 'checkbox', id: 'auto-probes', onchange: () => this.setAuto(ctx) });
		this.autoError = h('span', { class: 'form-error', id: 'auto-probes-error', role: 'alert' });
		this.autoLabel = h('label', { class: 'auto-probes', title: '' }, this.auto,
			' arm an automatic probe (stack + log, errors only, 10 min) on each new incident');
		fill(root, h('section', { class: 'card' },
			h('div', { class: 'toolbar' }, this.title, h('span', { class: 'spacer' }), this.autoLabel, this.autoError),
			this.list));
	},

	async setAuto(ctx) {
		const want = this.auto.checked;
		this.autoError.textContent = '';
		try {
			const s = await apiWrite('PUT', 'settings', { auto_probes: want });
			this.auto.checked = !!s.auto_probes;
		} catch (e) {
			this.auto.checked = !want;
			this.autoError.textContent = e.message || String(e);
		}
		ctx.refreshView();
	},

	async refresh(ctx) {
		const [data, settings] = await Promise.all([
			ctx.api('incidents', { window: ctx.window }),
			ctx.api('settings'),
		]);
		const can = canManage();
		this.auto.checked = !!settings.auto_probes;
		this.auto.disabled = !can;
		this.autoLabel.title = can ? '' : 'changing it needs the project\'s manage key (paste it in the Probes view)';
		const rows = [...data.incidents].sort((a, b) => b.last_seen - a.last_seen);
		const rca = new Map(await Promise.all(rows.filter((inc) => this.open.has(inc.id))
			.map(async (inc) => [inc.id, await ctx.api(`incidents/${inc.id}/rca`, { window: ctx.window }, { item: true })
				.catch((e) => ({ error: e.message || String(e) }))])));
		this.title.textContent = `Incidents (${fmtInt(rows.length)})`;
		fill(this.list, rows.length ? rows.map((inc) => this.incident(inc, rca.get(inc.id), ctx)) : empty('No incidents in this window.'));
	},

	incident(inc, rca, ctx) {
		const chain = inc.chain || [];
		const failing = chain.length ? chain[chain.length - 1].name : '';
		const open = this.open.has(inc.id);
		return h('article', { class: 'incident', dataset: { id: String(inc.id) } },
			h('div', { class: 'incident-head' },
				h('span', { class: ['badge', 'kind-' + (KIND[inc.kind] || 'error')] }, inc.kind === 'signal' && inc.signal ? `signal ${inc.signal}` : inc.kind),
				h('span', { class: 'fn incident-fn' }, failing),
				h('span', { class: 'spacer' }),
				h('span', { class: 'incident-count' }, `×${fmtInt(inc.count)}`),
				h('span', { class: 'muted', title: fmtTime(inc.first_seen) }, 'first ', timeEl(inc.first_seen)),
				h('span', { class: 'muted' }, 'last ', timeEl(inc.last_seen)),
				h('button', {
					class: ['btn', 'btn-small', 'btn-rca', open && 'active'], 'aria-expanded': String(open),
					onclick: () => { if (open) this.open.delete(inc.id); else this.open.add(inc.id); ctx.refreshView(); },
				}, open ? 'hide root cause' : 'root cause'),
				failing ? h('button', { class: 'btn btn-small btn-probe', title: 'probe the failing function', onclick: () => ctx.probe(failing) }, 'probe') : null,
				failing ? h('button', { class: 'btn btn-small', onclick: () => ctx.select(failing, 'prompt') }, 'fix prompt') : null),
			h('ol', { class: 'chain' }, chain.map((f, i) => h('li', { class: i === chain.length - 1 ? 'chain-fail' : '' },
				h('span', { class: 'fn' }, f.name),
				h('span', { class: 'file' }, fileLine(f.file, f.line))))),
			open && rca ? (rca.error ? h('div', { class: 'form-error' }, rca.error) : rcaLevels(rca, ctx)) : null);
	},
};
