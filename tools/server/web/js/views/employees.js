// views/employees.js: every function, sorted, filtered and paginated by the
// server (a project may hold hundreds of thousands of rows).

import { h, fill, breakable, fmtInt, fmtPct, fmtMs, fileLine, timeEl, badge, bar, empty, STATES, STATE_LABEL } from '../dom.js';

const PAGE = 50;

// A time that includes calls the runtime did not clock (sampled timing,
// CODENSM_SAMPLE): marked, with how many, rather than shown as measured.
function timed(r, ms) {
	if (!(r.estimated_calls > 0) || ms === null || ms === undefined) return fmtMs(ms);
	return h('span', {
		class: 'estimated',
		title: `estimated: ${fmtInt(r.estimated_calls)} of ${fmtInt(r.calls)} calls were not clocked (sampled timing) and count at the mean of the samples`,
	}, '≈ ' + fmtMs(ms));
}

// [field, header, cell, class]; field is the server's sort key.
const COLS = [
	['name', 'function', (r) => breakable(r.name), 'fn'],
	['department', 'department', (r) => r.department, 'dept'],
	['state', 'state', (r) => badge(r.state), 'state'],
	['calls', 'calls', (r) => fmtInt(r.calls), 'num c-calls'],
	['error_rate', 'err rate', (r) => fmtPct(r.error_rate, 2), 'num c-err'],
	['p50_ms', 'p50', (r) => timed(r, r.p50_ms), 'num c-p50'],
	['p95_ms', 'p95', (r) => timed(r, r.p95_ms), 'num c-p95'],
	['max_ms', 'max', (r) => fmtMs(r.max_ms), 'num'],
	['self_ms', 'self', (r) => timed(r, r.self_ms), 'num c-self'],
	['share', 'share', (r) => [bar(r.share, 'bar-blue'), h('span', { class: 'num' }, fmtPct(r.share))], 'share-cell'],
	['file', 'file:line', (r) => h('span', { title: fileLine(r.file, r.line) }, fileLine(r.file, r.line)), 'file'],
	['first_seen', 'first seen', (r) => timeEl(r.first_seen), 'time'],
	['last_seen', 'last seen', (r) => timeEl(r.last_seen), 'time'],
	// CODENSM_MODE=full: '–' for a function without a flow
	['decisions', 'dec', (r) => count(r.decisions), 'num c-dec'],
	['loops', 'loops', (r) => count(r.loops), 'num c-loops'],
	['returns', 'ret', (r) => count(r.returns), 'num c-ret'],
	['nodes_count', 'nodes', (r) => count(r.nodes_count), 'num c-nodes'],
	['lines', 'lines', (r) => count(r.lines), 'num c-lines'],
	['has_tests', 'tests', (r) => (r.has_tests === null ? '–' : r.has_tests ? 'yes' : 'no'), 'c-tests'],
];

function count(n) {
	return n === null || n === undefined ? '–' : fmtInt(n);
}

export default {
	id: 'employees',
	title: 'Employees',

	mount(root, ctx) {
		this.state = { sort: 'calls', order: 'desc', q: '', department: '', st: '', offset: 0 };
		let timer = 0;
		this.search = h('input', {
			type: 'search', id: 'emp-search', placeholder: 'Search function or file…', class: 'input',
			oninput: () => {
				clearTimeout(timer);
				timer = setTimeout(() => { this.state.q = this.search.value.trim(); this.state.offset = 0; ctx.refreshView(); }, 250);
			},
		});
		this.dept = h('select', { class: 'input', id: 'emp-dept', onchange: () => { this.state.department = this.dept.value; this.state.offset = 0; ctx.refreshView(); } },
			h('option', { value: '' }, 'all departments'));
		this.stSel = h('select', { class: 'input', id: 'emp-state', onchange: () => { this.state.st = this.stSel.value; this.state.offset = 0; ctx.refreshView(); } },
			h('option', { value: '' }, 'all states'),
			STATES.map((s) => h('option', { value: s }, STATE_LABEL[s])));
		this.pager = h('div', { class: 'pager' });
		this.table = h('div', { class: 'table-scroll' });
		fill(root, h('section', { class: 'card' },
			h('div', { class: 'toolbar' }, this.search, this.dept, this.stSel, h('span', { class: 'spacer' }), this.pager),
			this.table));
	},

	async refresh(ctx) {
		const st = this.state;
		const [data, deps] = await Promise.all([
			ctx.api('functions', {
				window: ctx.window, sort: st.sort, order: st.order, department: st.department,
				q: st.q, state: st.st, offset: st.offset, limit: PAGE,
			}),
			ctx.api('departments', { window: ctx.window }),
		]);
		this.fillDepartments(deps.departments.map((d) => d.department));
		this.renderPager(data.total, data.rows.length, ctx);
		const head = h('tr', {}, COLS.map(([field, title, , cls]) => {
			const active = st.sort === field;
			return h('th', {
				class: ['sortable', cls.split(' ')[0], active && 'sorted'],
				title: `sort by ${title}`,
				onclick: () => {
					if (st.sort === field) st.order = st.order === 'desc' ? 'asc' : 'desc';
					else { st.sort = field; st.order = ['name', 'department', 'file', 'state'].includes(field) ? 'asc' : 'desc'; }
					st.offset = 0;
					ctx.refreshView();
				},
			}, title, active ? (st.order === 'desc' ? ' ▾' : ' ▴') : '');
		}), h('th', {}, ''));
		const body = h('tbody', {}, data.rows.map((r) => h('tr', {
			class: ['clickable', r.state === 'failing' && 'row-failing'],
			dataset: { name: r.name },
			title: 'show the call graph around this function',
			onclick: () => ctx.select(r.name, 'graph'),
		},
		COLS.map(([, , cell, cls]) => h('td', { class: cls }, cell(r))),
		h('td', { class: 'actions' }, h('button', {
			class: 'btn btn-small btn-icon', title: 'AI fix prompt for this function',
			onclick: (e) => { e.stopPropagation(); ctx.select(r.name, 'prompt'); },
		}, 'AI'), r.nodes_count === null ? '' : h('button', {
			class: 'btn btn-small btn-icon btn-flow', title: 'control-flow diagram of this function',
			onclick: (e) => { e.stopPropagation(); ctx.select(r.name, 'flow'); },
		}, 'flow'), h('button', {
			class: 'btn btn-small btn-icon btn-probe', title: 'probe this function: look closer at its calls for a few minutes',
			onclick: (e) => { e.stopPropagation(); ctx.probe(r.name); },
		}, 'probe')))));
		fill(this.table, data.rows.length
			? h('table', { class: 'grid dense', id: 'functions-table' }, h('thead', {}, head), body)
			: empty('No function matches.'));
	},

	fillDepartments(names) {
		const have = [...this.dept.options].map((o) => o.value).slice(1);
		if (have.join('\n') === names.join('\n')) return;
		const cur = this.dept.value;
		fill(this.dept, h('option', { value: '' }, 'all departments'), names.map((n) => h('option', { value: n }, n)));
		this.dept.value = names.includes(cur) ? cur : '';
	},

	renderPager(total, n, ctx) {
		const st = this.state;
		const from = total ? st.offset + 1 : 0;
		fill(this.pager,
			h('span', { class: 'muted', id: 'emp-count' }, `${fmtInt(from)}–${fmtInt(st.offset + n)} of ${fmtInt(total)}`),
			h('button', { class: 'btn btn-small', disabled: st.offset === 0, onclick: () => { st.offset = Math.max(0, st.offset - PAGE); ctx.refreshView(); } }, '‹ prev'),
			h('button', { class: 'btn btn-small', disabled: st.offset + n >= total, onclick: () => { st.offset += PAGE; ctx.refreshView(); } }, 'next ›'));
	},
};
