// views/flow.js: one function's control flow (CODENSM_MODE=full), drawn
// BPMN-style by the server (Graphviz lays it out: flow.svg), with its
// complexity signals and the functions it calls.

import { h, fill, fmtInt, empty } from '../dom.js';
import { apiText } from '../api.js';
import { picker } from '../picker.js';

// The server's SVG as a node of this page.  It is made by Graphviz from node
// kinds and numbers only, but it is still parsed as data: no script, no
// foreign object, no event attribute, no external reference survives.
export function svgNode(text) {
	const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
	const root = doc.documentElement;
	if (!root || root.nodeName !== 'svg') throw new Error('flow.svg: not an SVG document');
	for (const bad of root.querySelectorAll('script, foreignObject')) bad.remove();
	for (const el of [root, ...root.querySelectorAll('*')]) {
		for (const a of [...el.attributes]) {
			if (/^on/i.test(a.name) || (/href$/i.test(a.name) && !a.value.startsWith('#'))) el.removeAttribute(a.name);
		}
	}
	root.setAttribute('class', 'flow-svg');
	root.setAttribute('id', 'flow-svg');
	return document.importNode(root, true);
}

const KINDS = [
	['start', 'start event'], ['end', 'end event'], ['error', 'error end'],
	['decision', 'decision (gateway)'], ['loop', 'loop'], ['block', 'block of statements'],
];

function stat(label, value) {
	return h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-label' }, label));
}

export default {
	id: 'flow',
	title: 'Flow',

	mount(root, ctx) {
		this.pick = picker(ctx, (name) => ctx.select(name, 'flow'));
		this.title = h('div', { class: 'card-title' }, 'Flow');
		this.box = h('div', { class: 'flow-box', id: 'flow-box' });
		this.facts = h('div', { class: 'flow-facts', id: 'flow-facts' });
		fill(root,
			h('section', { class: 'card' },
				h('div', { class: 'toolbar' }, this.title, h('span', { class: 'spacer' }), this.pick.el),
				h('div', { class: 'flow-layout' }, this.box, this.facts)),
			h('p', { class: 'hint' }, 'Sent by programs run with CODENSM_MODE=full after `codensm analyze`: node kinds and counts only, never source text. ',
				KINDS.map(([k, label]) => h('span', { class: ['flow-key', 'fk-' + k] }, label))));
	},

	async refresh(ctx) {
		if (!ctx.fn) {
			const top = await ctx.api('functions', { window: ctx.window, sort: 'decisions', order: 'desc', limit: 1 });
			if (!top.rows.length || top.rows[0].nodes_count === null) {
				fill(this.box, empty('No function has a flow yet: run `codensm analyze`, then the program with CODENSM_MODE=full.'));
				fill(this.facts);
				return;
			}
			ctx.fn = top.rows[0].name;
		}
		this.pick.set(ctx.fn);
		this.title.textContent = 'Flow of ';
		this.title.appendChild(h('span', { class: 'fn' }, ctx.fn));
		let f;
		try {
			f = await ctx.api('flow', { fn: ctx.fn });
		} catch (e) {
			fill(this.box, empty(`No flow for ${ctx.fn}: it was not analysed, or it has not run with CODENSM_MODE=full.`));
			fill(this.facts);
			return;
		}
		const [svg] = await Promise.all([apiText('flow.svg', { fn: ctx.fn })]);
		fill(this.box, svgNode(svg));
		const fl = f.flow;
		fill(this.facts,
			h('div', { class: 'flow-stats' },
				stat('complexity', fmtInt(f.complexity)),
				stat('decisions', fmtInt(fl.decisions)),
				stat('loops', fmtInt(fl.loops)),
				stat('returns', fmtInt(fl.returns)),
				stat('nodes', fmtInt(fl.nodes_count)),
				stat('lines', fmtInt(fl.lines))),
			h('p', {}, h('span', { class: ['badge', fl.has_tests ? 'st-working' : 'st-failing'], id: 'flow-tests' },
				fl.has_tests ? 'has tests' : 'no tests'), ' ',
			h('span', { class: ['badge', f.boilerplate ? 'st-idle' : 'st-underused'], id: 'flow-kind' },
				f.boilerplate ? 'boilerplate' : 'unique IP')),
			h('div', { class: 'card-title' }, 'Calls (static)'),
			fl.calls_out.length
				? h('ul', { class: 'flow-calls' }, fl.calls_out.map((c) => h('li', { class: ['fn', 'clickable'], onclick: () => ctx.select(c, 'flow') }, c)))
				: h('p', { class: 'muted' }, 'none tracked'),
			h('p', { class: 'muted small' }, `from ${f.service || 'an unnamed service'}, batch ${f.batch_id || '–'}`));
	},
};
