// views/graph.js: the observed caller -> callee edges around one function,
// laid out in columns (callers left, callees right) and listed with counts.

import { h, s, fill, fmtInt, empty } from '../dom.js';
import { picker } from '../picker.js';

const NODE_W = 200, NODE_H = 40, COL_GAP = 90, ROW_GAP = 14, MAX_PER_COL = 40;

function clip(name, n = 26) {
	name = String(name);
	return name.length > n ? '…' + name.slice(name.length - n + 1) : name;
}

// Depth of every node from the center: callers negative, callees positive.
function depths(center, nodes, edges) {
	const depth = new Map([[center, 0]]);
	const walk = (dir) => {
		let frontier = [center];
		for (let d = 1; d <= 3 && frontier.length; d++) {
			const next = [];
			for (const e of edges) {
				const [from, to] = dir > 0 ? [e.caller, e.callee] : [e.callee, e.caller];
				if (frontier.includes(from) && !depth.has(to)) { depth.set(to, d * dir); next.push(to); }
			}
			frontier = next;
		}
	};
	walk(-1);
	walk(1);
	for (const n of nodes) if (!depth.has(n.name)) depth.set(n.name, 1);
	return depth;
}

export default {
	id: 'graph',
	title: 'Call graph',

	mount(root, ctx) {
		this.pick = picker(ctx, (name) => ctx.select(name, 'graph'));
		this.svgBox = h('div', { class: 'graph-box', id: 'graph' });
		this.edges = h('div');
		this.title = h('div', { class: 'card-title' }, 'Call graph');
		fill(root,
			h('section', { class: 'card' },
				h('div', { class: 'toolbar' }, this.title, h('span', { class: 'spacer' }),
					h('button', { class: 'btn', id: 'graph-probe', title: 'probe this function: look closer at its calls for a few minutes', onclick: () => ctx.probe(ctx.fn) }, 'Probe'),
					h('button', { class: 'btn', id: 'graph-flow', title: 'its control flow (CODENSM_MODE=full)', onclick: () => ctx.select(ctx.fn, 'flow') }, 'Flow'),
					this.pick.el),
				this.svgBox),
			h('section', { class: 'card' }, h('div', { class: 'card-title' }, 'Edges'), this.edges));
	},

	async refresh(ctx) {
		if (!ctx.fn) {
			const top = await ctx.api('functions', { window: ctx.window, sort: 'calls', order: 'desc', limit: 1 });
			if (!top.rows.length) {
				fill(this.svgBox, empty('No function has been called yet.'));
				fill(this.edges);
				return;
			}
			ctx.fn = top.rows[0].name;
		}
		this.pick.set(ctx.fn);
		const g = await ctx.api('graph', { fn: ctx.fn, window: ctx.window });
		this.title.textContent = 'Call graph';
		this.title.appendChild(h('span', { class: 'muted' }, ' around '));
		this.title.appendChild(h('span', { class: 'fn' }, g.center));
		this.draw(g, ctx);
		const edges = [...g.edges].sort((a, b) => b.calls - a.calls);
		fill(this.edges, edges.length ? h('table', { class: 'grid', id: 'graph-edges' },
			h('thead', {}, h('tr', {}, h('th', {}, 'caller'), h('th', {}, ''), h('th', {}, 'callee'), h('th', { class: 'num' }, 'calls'))),
			h('tbody', {}, edges.map((e) => h('tr', {},
				h('td', { class: ['fn', 'clickable', e.caller === g.center && 'center'], onclick: () => ctx.select(e.caller, 'graph') }, e.caller),
				h('td', { class: 'muted' }, '→'),
				h('td', { class: ['fn', 'clickable', e.callee === g.center && 'center'], onclick: () => ctx.select(e.callee, 'graph') }, e.callee),
				h('td', { class: 'num' }, fmtInt(e.calls)))))) :
			empty('No tracked caller or callee of this function in the window.'));
	},

	draw(g, ctx) {
		const nodes = g.nodes.length ? g.nodes : [{ name: g.center, department: '', calls: 0 }];
		if (!nodes.some((n) => n.name === g.center)) nodes.push({ name: g.center, department: '', calls: 0 });
		const depth = depths(g.center, nodes, g.edges);
		const cols = new Map();
		for (const n of nodes) {
			const d = depth.get(n.name);
			if (!cols.has(d)) cols.set(d, []);
			cols.get(d).push(n);
		}
		const order = [...cols.keys()].sort((a, b) => a - b);
		const pos = new Map();
		let tallest = 1;
		order.forEach((d, ci) => {
			const col = cols.get(d).sort((a, b) => b.calls - a.calls).slice(0, MAX_PER_COL);
			tallest = Math.max(tallest, col.length);
			col.forEach((n, ri) => pos.set(n.name, { x: 10 + ci * (NODE_W + COL_GAP), ri, ci, n, len: col.length }));
		});
		const height = tallest * (NODE_H + ROW_GAP) + 20;
		for (const p of pos.values()) p.y = 10 + (height - 20 - p.len * (NODE_H + ROW_GAP)) / 2 + p.ri * (NODE_H + ROW_GAP);
		const width = 20 + order.length * (NODE_W + COL_GAP) - COL_GAP;
		const maxCalls = Math.max(1, ...g.edges.map((e) => e.calls));
		const svg = s('svg', { class: 'graph', width, height, viewBox: `0 0 ${width} ${height}` });
		const defs = s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '9', refY: '5', markerWidth: '8', markerHeight: '8', markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' },
			s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' })));
		svg.appendChild(defs);
		for (const e of g.edges) {
			const a = pos.get(e.caller), b = pos.get(e.callee);
			if (!a || !b) continue;
			const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
			const mx = (x1 + x2) / 2;
			const w = 1 + 4 * Math.log1p(e.calls) / Math.log1p(maxCalls);
			svg.appendChild(s('path', {
				d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2 - 2} ${y2}`,
				class: 'edge', 'stroke-width': w.toFixed(1), 'marker-end': 'url(#arrow)',
			}, s('title', {}, `${e.caller} → ${e.callee}: ${fmtInt(e.calls)} calls`)));
			const lx = (x1 + x2) / 2, ly = (y1 + y2) / 2 - 4;
			svg.appendChild(s('text', { x: lx, y: ly, class: 'edge-label', 'text-anchor': 'middle' }, fmtInt(e.calls)));
		}
		for (const p of pos.values()) {
			const center = p.n.name === g.center;
			const grp = s('g', { class: center ? 'node node-center' : 'node', transform: `translate(${p.x},${p.y})` },
				s('title', {}, `${p.n.name}\n${p.n.department} · ${fmtInt(p.n.calls)} calls`),
				s('rect', { width: NODE_W, height: NODE_H, rx: '6' }),
				s('text', { x: 10, y: 17, class: 'node-name' }, clip(p.n.name)),
				s('text', { x: 10, y: 32, class: 'node-sub' }, `${clip(p.n.department || '', 14)} · ${fmtInt(p.n.calls)} calls`));
			grp.addEventListener('click', () => ctx.select(p.n.name, 'graph'));
			svg.appendChild(grp);
		}
		fill(this.svgBox, svg);
	},
};
