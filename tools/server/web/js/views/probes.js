// views/probes.js: the project's probes (docs/probes.md): the list, and for
// the one selected its processes and live results; the form that creates
// one, and renew and remove, with the manage key.

import { h, fill, fmtInt, fmtTime, empty } from '../dom.js';
import { apiWrite, canManage } from '../api.js';
import { HistChart } from '../charts.js';
import { manageBox } from '../manage.js';
import { probeForm } from '../probeform.js';
import {
	STATUSES, fmtLeft, unixOf, statusBadge, stateBadge, processesTable,
	histStats, countStats, logTable, byTable, chainList,
} from '../proberesults.js';

const enc = encodeURIComponent;

// [EMITTING] ×3 [ERROR]: how a probe stands across its processes, a badge per status.
function processSummary(procs) {
	if (!procs || !procs.length) return h('span', { class: 'muted' }, 'no process yet');
	const n = {};
	for (const p of procs) n[p.status] = (n[p.status] || 0) + 1;
	const order = [...STATUSES, ...Object.keys(n).filter((s) => !STATUSES.includes(s))];
	return order.filter((s) => n[s]).map((s) => h('span', { class: 'ps-sum' }, statusBadge(s), n[s] > 1 ? ` ×${n[s]}` : ''));
}

function origin(p) {
	if (!p.auto) return 'manual';
	return p.incident_id !== null && p.incident_id !== undefined ? `auto · incident #${p.incident_id}` : 'auto';
}

// "errors only, caller shop.api, 1 in 10": the conditions in words.
function conditions(custom) {
	const c = custom || {};
	const out = [];
	if (c.min_duration_ms !== undefined) out.push(`≥ ${c.min_duration_ms} ms`);
	if (c.caller) out.push(`caller ${c.caller}`);
	if (c.errors_only) out.push('errors only');
	if (c.sample > 1) out.push(`1 in ${c.sample}`);
	if (c.max_hits !== undefined) out.push(`at most ${fmtInt(c.max_hits)} hits`);
	return out.length ? out.join(', ') : 'every event';
}

export default {
	id: 'probes',
	title: 'Probes',
	pollMs: 2000, // results are live: the view reloads faster than the others

	mount(root, ctx) {
		this.selected = '';
		this.armed = null;    // {id, until}: remove clicked once, asks again
		this.pending = '';    // a target to probe once a manage key is pasted
		this.manage = manageBox(() => {
			if (canManage() && this.pending) this.openForm(this.pending);
			ctx.refreshView();
		});
		this.form = probeForm(ctx, (p) => {
			this.formCard.hidden = true;
			this.selected = p.id;
			ctx.refreshView();
		}, () => { this.formCard.hidden = true; });
		this.formCard = h('section', { class: 'card', id: 'probe-form-card', hidden: true },
			h('div', { class: 'card-title' }, 'New probe'), this.form.el);
		this.newBtn = h('button', { class: 'btn btn-primary', id: 'probe-new', onclick: () => this.openForm('') }, 'New probe');
		this.title = h('div', { class: 'card-title' }, 'Probes');
		this.actionError = h('span', { class: 'form-error', id: 'probe-action-error', role: 'alert' });
		this.list = h('div', { id: 'probes-list' });
		this.head = h('div', { class: 'probe-head', id: 'probe-head' });
		this.procs = h('div');
		this.stats = h('div');
		this.histCanvas = h('canvas', { id: 'probe-hist' });
		this.histBox = h('div', { class: 'chart-box', hidden: true }, this.histCanvas);
		this.more = h('div');
		this.detail = h('section', { class: 'card', id: 'probe-detail', hidden: true },
			this.head,
			h('div', { class: 'card-title' }, 'Processes'), this.procs,
			h('div', { class: 'card-title probe-results-title' }, 'Results'), this.stats, this.histBox, this.more);
		fill(root,
			h('section', { class: 'card' }, h('div', { class: 'toolbar manage-bar' }, this.manage.el, h('span', { class: 'spacer' }), this.newBtn)),
			this.formCard,
			h('section', { class: 'card' }, h('div', { class: 'toolbar' }, this.title, this.actionError), this.list),
			this.detail);
	},

	openForm(target) {
		this.pending = '';
		this.formCard.hidden = false;
		this.form.open(target);
	},

	async refresh(ctx) {
		this.takeRequest(ctx);
		const data = await ctx.api('probes');
		const probes = data.probes || [];
		this.title.textContent = `Probes (${fmtInt(probes.length)})`;
		if (!probes.some((p) => p.id === this.selected)) this.selected = probes.length ? probes[0].id : '';
		this.renderList(probes, ctx);
		if (!this.selected) {
			this.detail.hidden = true;
			return;
		}
		let probe;
		try {
			probe = await ctx.api(`probes/${enc(this.selected)}`, {}, { item: true });
		} catch (e) {
			if (/HTTP 404/.test(e.message)) return; // removed meanwhile: the next poll lists without it
			throw e;
		}
		this.renderDetail(probe, ctx);
	},

	// ctx.probe(name) and ctx.showProbe(id) from other views land here.
	takeRequest(ctx) {
		if (ctx.probeId) {
			this.selected = ctx.probeId;
			ctx.probeId = '';
		}
		if (ctx.probeTarget) {
			const target = ctx.probeTarget;
			ctx.probeTarget = '';
			if (canManage()) this.openForm(target);
			else this.pending = target;
		}
		this.manage.render();
		const can = canManage();
		this.newBtn.hidden = !can;
		if (!can) this.formCard.hidden = true;
		const note = this.manage.el.querySelector('.pending');
		if (note) note.remove();
		if (!can && this.pending) {
			this.manage.el.appendChild(h('div', { class: 'pending', id: 'manage-pending' },
				'To probe ', h('span', { class: 'fn' }, this.pending), ', paste the manage key above.'));
		}
	},

	actions(p, ctx) {
		if (!canManage()) return null;
		const armed = this.armed && this.armed.id === p.id && this.armed.until > Date.now();
		return [
			h('button', {
				class: 'btn btn-small probe-renew', title: 'start it again: a new lastmodified, fresh results, its full lifespan',
				onclick: (e) => { e.stopPropagation(); this.act(ctx, 'POST', `probes/${enc(p.id)}/renew`, {}); },
			}, 'renew'),
			h('button', {
				class: ['btn', 'btn-small', 'probe-remove', armed && 'btn-danger'], title: 'remove it: every process disarms it at its next flush',
				onclick: (e) => {
					e.stopPropagation();
					if (!(this.armed && this.armed.id === p.id && this.armed.until > Date.now())) {
						this.armed = { id: p.id, until: Date.now() + 5000 };
						ctx.refreshView();
						return;
					}
					this.armed = null;
					this.act(ctx, 'DELETE', `probes/${enc(p.id)}`);
				},
			}, armed ? 'remove: sure?' : 'remove'),
		];
	},

	async act(ctx, method, path, body) {
		this.actionError.textContent = '';
		try {
			await apiWrite(method, path, body);
		} catch (e) {
			this.actionError.textContent = e.message || String(e);
		}
		ctx.refreshView();
	},

	renderList(probes, ctx) {
		if (!probes.length) {
			fill(this.list, empty(canManage()
				? 'No probe yet. Create one here, or from a function in Employees, the call graph or an incident.'
				: 'No probe yet.'));
			return;
		}
		fill(this.list, h('table', { class: 'grid', id: 'probes-table' },
			h('thead', {}, h('tr', {},
				h('th', {}, 'id'), h('th', {}, 'target'), h('th', {}, 'type'), h('th', {}, 'state'),
				h('th', {}, 'time left'), h('th', { class: 'num' }, 'hits'), h('th', {}, 'processes'),
				h('th', {}, 'origin'), h('th', {}, ''))),
			h('tbody', {}, probes.map((p) => h('tr', {
				class: ['clickable', p.id === this.selected && 'selected', p.state === 'expired' && 'row-expired'],
				dataset: { id: p.id },
				onclick: () => { this.selected = p.id; ctx.refreshView(); },
			},
			h('td', { class: 'name c-id' }, p.id),
			h('td', { class: 'fn c-target' }, p.target),
			h('td', { class: 'c-type' }, (p.instrument && p.instrument.type) || '–'),
			h('td', { class: 'c-state' }, stateBadge(p.state)),
			h('td', { class: 'c-left' }, fmtLeft(p.time_left_s)),
			h('td', { class: 'num c-hits' }, fmtInt(p.hits)),
			h('td', { class: 'c-procs' }, processSummary(p.processes)),
			h('td', { class: 'c-origin' }, origin(p)),
			h('td', { class: 'actions' }, this.actions(p, ctx)))))));
	},

	renderDetail(p, ctx) {
		this.detail.hidden = false;
		const ins = p.instrument || {};
		fill(this.head,
			h('div', { class: 'toolbar' },
				h('div', { class: 'card-title' }, 'Probe ', h('span', { class: 'fn', id: 'probe-id' }, p.id), ' on ', h('span', { class: 'fn' }, p.target)),
				stateBadge(p.state),
				h('span', { class: 'spacer' }),
				this.actions(p, ctx)),
			h('dl', { class: 'kv probe-kv' },
				h('dt', {}, 'instrument'), h('dd', {}, `${ins.type || '–'} of ${ins.value || '–'} at ${ins.event || '–'}`, ins.name ? ` · “${ins.name}”` : ''),
				h('dt', {}, 'conditions'), h('dd', {}, conditions(ins.custom)),
				h('dt', {}, 'time left'), h('dd', { id: 'probe-left' }, fmtLeft(p.time_left_s), p.expires_at ? h('span', { class: 'muted' }, ` (until ${fmtTime(p.expires_at)})`) : null),
				h('dt', {}, 'hits'), h('dd', { id: 'probe-hits' }, fmtInt(p.hits)),
				h('dt', {}, 'started'), h('dd', { title: p.lastmodified || '' }, p.lastmodified ? fmtTime(unixOf(p.lastmodified)) : '–', ` · lifespan ${p.lifespan} min`),
				h('dt', {}, 'origin'), h('dd', {}, origin(p))));
		fill(this.procs, processesTable(p.processes));
		this.renderResults(p.results || { type: ins.type });
	},

	renderResults(r) {
		const hist = r.type === 'hist';
		this.histBox.hidden = !hist;
		if (hist) {
			fill(this.stats, histStats(r));
			if (!this.chart) this.chart = new HistChart(this.histCanvas);
			this.chart.update(r.hist, r);
			fill(this.more);
			return;
		}
		if (r.type === 'log') {
			fill(this.stats);
			fill(this.more, logTable(r));
		} else if (r.type === 'incr') {
			fill(this.stats, countStats(r));
			fill(this.more, byTable(r));
		} else if (r.type === 'stack') {
			fill(this.stats);
			fill(this.more, h('div', { class: 'card-title' }, 'Chains (caller first, the probed function last)'),
				chainList(r.stacks, r.stacks_other, 'probe-stacks'));
		} else {
			fill(this.stats, countStats(r));
			fill(this.more);
		}
	},
};
