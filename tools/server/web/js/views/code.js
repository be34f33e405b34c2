// views/code.js: what CODENSM_MODE=full tells about the code itself: the
// unique-IP vs boilerplate split, test coverage and the untested functions
// that carry the NSM, and complexity against error rate (docs/api.md).

import { h, s, fill, fmtInt, fmtPct, fmtNum, bar, empty } from '../dom.js';

const W = 520, H = 260, PAD = 36;

function split(label, side, cls) {
	return h('tr', {},
		h('th', {}, label),
		h('td', { class: 'num' }, fmtInt(side.functions)),
		h('td', { class: 'share-cell' }, bar(side.function_share, cls), h('span', { class: 'num' }, fmtPct(side.function_share))),
		h('td', { class: 'num' }, fmtNum(side.nsm)),
		h('td', { class: 'share-cell' }, bar(side.nsm_share, cls), h('span', { class: 'num' }, fmtPct(side.nsm_share))));
}

// Complexity (x) against error rate (y): one dot per function called in
// the window, its area by its NSM.  A plain scatter of the server's numbers.
function scatter(points, ctx) {
	const maxX = Math.max(2, ...points.map((p) => p.complexity));
	const maxY = Math.max(0.05, ...points.map((p) => p.error_rate));
	const maxN = Math.max(1, ...points.map((p) => p.nsm));
	const x = (v) => PAD + (W - 2 * PAD) * (v - 1) / (maxX - 1);
	const y = (v) => H - PAD - (H - 2 * PAD) * v / maxY;
	const svg = s('svg', { class: 'scatter', id: 'cx-scatter', width: W, height: H, viewBox: `0 0 ${W} ${H}` },
		s('line', { x1: PAD, y1: H - PAD, x2: W - PAD, y2: H - PAD, class: 'axis' }),
		s('line', { x1: PAD, y1: PAD, x2: PAD, y2: H - PAD, class: 'axis' }),
		s('text', { x: W - PAD, y: H - 8, 'text-anchor': 'end', class: 'axis-label' }, `complexity → (max ${maxX})`),
		s('text', { x: 4, y: PAD - 10, class: 'axis-label' }, `error rate ↑ (max ${fmtPct(maxY)})`));
	for (const p of points) {
		const dot = s('circle', {
			cx: x(p.complexity).toFixed(1), cy: y(p.error_rate).toFixed(1),
			r: (3 + 7 * Math.sqrt(Math.max(0, p.nsm) / maxN)).toFixed(1),
			class: ['dot', p.boilerplate ? 'dot-boiler' : 'dot-ip', p.has_tests ? '' : 'dot-untested'].join(' '),
		}, s('title', {}, `${p.name}\ncomplexity ${p.complexity} · error rate ${fmtPct(p.error_rate, 2)} · NSM ${fmtNum(p.nsm)}${p.has_tests ? '' : ' · no tests'}`));
		dot.addEventListener('click', () => ctx.select(p.name, 'flow'));
		svg.appendChild(dot);
	}
	return svg;
}

export default {
	id: 'code',
	title: 'Code',

	mount(root) {
		this.split = h('div', { id: 'code-split' });
		this.tests = h('div', { id: 'code-tests' });
		this.untested = h('div', { id: 'code-untested' });
		this.plot = h('div', { id: 'code-scatter' });
		fill(root,
			h('div', { class: 'grid-2' },
				h('section', { class: 'card' }, h('div', { class: 'card-title' }, 'Unique IP vs boilerplate'), this.split,
					h('p', { class: 'hint' }, 'Boilerplate: no decision, no loop, at most 5 lines (getters, setters, thin wrappers). Shares are of the analysed functions and of their NSM in the window.')),
				h('section', { class: 'card' }, h('div', { class: 'card-title' }, 'Test coverage'), this.tests)),
			h('div', { class: 'grid-2' },
				h('section', { class: 'card' }, h('div', { class: 'card-title' }, 'Complexity × error rate'), this.plot,
					h('p', { class: 'hint' }, 'complexity = decisions + loops + 1; dot area by NSM; hollow dots have no tests. Click a dot for its flow.')),
				h('section', { class: 'card' }, h('div', { class: 'card-title' }, 'Load-bearing and untested'), this.untested)));
	},

	async refresh(ctx) {
		const c = await ctx.api('code', { window: ctx.window });
		if (!c.analysed) {
			const none = empty('No flows yet: run `codensm analyze -p BUILD_DIR BINARY`, then the program with CODENSM_MODE=full.');
			fill(this.split, none);
			fill(this.tests);
			fill(this.untested);
			fill(this.plot);
			return;
		}
		fill(this.split, h('table', { class: 'grid', id: 'ip-split' },
			h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', { class: 'num' }, 'functions'), h('th', {}, 'share'), h('th', { class: 'num' }, 'NSM'), h('th', {}, 'NSM share'))),
			h('tbody', {}, split('unique IP', c.split.unique_ip, 'bar-blue'), split('boilerplate', c.split.boilerplate, 'bar-grey'))),
		h('p', { class: 'muted small' }, `${fmtInt(c.analysed)} of ${fmtInt(c.functions)} functions analysed`));
		const t = c.tests;
		fill(this.tests, h('div', { class: 'nsm-stats', id: 'tests-stats' },
			h('div', {}, h('div', { class: 'stat-value' }, fmtPct(t.tested_share)), h('div', { class: 'stat-label' }, 'functions with tests')),
			h('div', {}, h('div', { class: 'stat-value' }, fmtInt(t.without_tests)), h('div', { class: 'stat-label' }, 'without tests')),
			h('div', {}, h('div', { class: 'stat-value' }, fmtPct(t.untested_nsm_share)), h('div', { class: 'stat-label' }, 'NSM carried by untested code'))));
		fill(this.untested, c.load_bearing_untested.length
			? h('table', { class: 'grid', id: 'untested-table' },
				h('thead', {}, h('tr', {}, h('th', {}, 'function'), h('th', { class: 'num' }, 'NSM share'), h('th', { class: 'num' }, 'complexity'), h('th', { class: 'num' }, 'err rate'))),
				h('tbody', {}, c.load_bearing_untested.map((r) => h('tr', { class: 'clickable', onclick: () => ctx.select(r.name, 'flow') },
					h('td', { class: 'fn' }, r.name), h('td', { class: 'num' }, fmtPct(r.nsm_share)),
					h('td', { class: 'num' }, fmtInt(r.complexity)), h('td', { class: 'num' }, fmtPct(r.error_rate, 2))))))
			: empty('Every function that earned NSM in the window has a test.'));
		fill(this.plot, c.complexity_vs_errors.length ? scatter(c.complexity_vs_errors, ctx) : empty('No analysed function was called in the window.'));
	},
};
