// rca.js: an incident's root-cause analysis in three levels (GET
// incidents/{id}/rca, docs/api.md "Root cause"): the failing chain, what
// the automatic probe caught since, what changed around the first
// occurrence.  Each level's title is the server's.

import { h, fmtInt, fmtMs, fmtNum, fileLine, timeEl, empty } from './dom.js';
import { statusBadge, chainList, unixOf } from './proberesults.js';

function level(l, ...body) {
	return h('section', { class: 'rca-level', dataset: { level: String(l.level) } },
		h('div', { class: 'rca-title' }, h('span', { class: 'rca-n' }, String(l.level)), l.title || ''),
		...body);
}

function miniTable(cls, heads, rows) {
	return h('table', { class: ['grid', 'dense', 'rca-table', cls] },
		h('thead', {}, h('tr', {}, heads.map(([t, cls]) => h('th', { class: cls || '' }, t)))),
		h('tbody', {}, rows));
}

function chainLevel(l) {
	const chain = l.chain || [];
	return level(l, chain.length ? h('ol', { class: 'chain' }, chain.map((f, i) => h('li', { class: i === chain.length - 1 ? 'chain-fail' : '' },
		h('span', { class: 'fn' }, f.name),
		h('span', { class: 'file' }, fileLine(f.file, f.line))))) : empty('No chain was reported.'));
}

function probeLevel(l, ctx) {
	if (l.status === 'off') return level(l, h('p', { class: 'muted rca-none' }, 'Automatic probes are off for this project: nothing was armed.'));
	if (l.status === 'none' || !l.probe_id) return level(l, h('p', { class: 'muted rca-none' }, 'No automatic probe was armed for this incident (one may already watch this function).'));
	const d = l.durations || {};
	const callers = [...(l.callers || [])].sort((a, b) => b.count - a.count);
	return level(l,
		h('div', { class: 'rca-line' },
			'Probe ', h('button', { class: 'btn btn-small rca-probe', onclick: () => ctx.showProbe(l.probe_id) }, l.probe_id), ' ',
			statusBadge(l.status),
			h('span', { class: 'rca-fig' }, h('b', { class: 'rca-occ' }, fmtInt(l.occurrences)), ' occurrences caught'),
			h('span', { class: 'rca-fig' }, h('b', {}, fmtInt(l.threads)), l.threads === 1 ? ' thread' : ' threads'),
			h('span', { class: 'rca-fig' }, 'p50 ', h('b', {}, fmtMs(d.p50_ms)), ' · p95 ', h('b', {}, fmtMs(d.p95_ms)), ' · max ', h('b', {}, fmtMs(d.max_ms)))),
		callers.length ? miniTable('rca-probe-callers', [['caller'], ['count', 'num']], callers.map((c) => h('tr', {},
			h('td', { class: 'fn' }, c.name), h('td', { class: 'num' }, fmtInt(c.count))))) : null,
		(l.chains || []).length ? chainList(l.chains, 0, '') : null,
		(l.log || []).length ? miniTable('rca-log', [['time'], ['thread', 'num'], ['caller'], ['duration', 'num'], ['error']],
			l.log.slice(0, 10).map((x) => h('tr', {},
				h('td', { class: 'time' }, timeEl(x.t)),
				h('td', { class: 'num' }, String(x.thread ?? '–')),
				h('td', { class: 'fn' }, x.caller || '–'),
				h('td', { class: 'num' }, fmtMs(x.duration_ms)),
				h('td', {}, x.error ? 'error' : '')))) : null,
		l.occurrences ? null : h('p', { class: 'muted rca-none' }, 'The probe has caught no occurrence yet.'));
}

function changeLevel(l) {
	const b = l.new_build;
	const callers = l.new_callers || [];
	const shifts = l.latency_shifts || [];
	return level(l,
		h('p', { class: 'rca-build' }, b
			? ['New build of ', h('b', {}, b.service || '–'), ': ', h('span', { class: 'fn' }, b.build_id || '–'), ', first seen ', timeEl(unixOf(b.first_seen)), '.']
			: h('span', { class: 'muted' }, 'No new build of the service around the first occurrence.')),
		callers.length ? miniTable('rca-callers', [['new caller'], ['first seen'], ['calls', 'num']], callers.map((c) => h('tr', {},
			h('td', { class: 'fn' }, c.name), h('td', { class: 'time' }, timeEl(unixOf(c.first_seen))), h('td', { class: 'num' }, fmtInt(c.calls)))))
			: h('div', { class: 'muted rca-line' }, 'No new caller.'),
		shifts.length ? miniTable('rca-shifts', [['latency shift'], ['p95 before', 'num'], ['p95 after', 'num'], ['ratio', 'num']], shifts.map((s) => h('tr', {},
			h('td', { class: 'fn' }, s.name), h('td', { class: 'num' }, fmtMs(s.before_p95_ms)), h('td', { class: 'num' }, fmtMs(s.after_p95_ms)),
			h('td', { class: 'num' }, s.ratio === null || s.ratio === undefined ? '–' : `×${fmtNum(s.ratio)}`))))
			: h('div', { class: 'muted rca-line' }, 'No latency shift of the function or its callees.'));
}

export function rcaLevels(rca, ctx) {
	const byLevel = Object.fromEntries((rca.levels || []).map((l) => [l.level, l]));
	return h('div', { class: 'rca' },
		byLevel[1] ? chainLevel(byLevel[1]) : null,
		byLevel[2] ? probeLevel(byLevel[2], ctx) : null,
		byLevel[3] ? changeLevel(byLevel[3]) : null);
}
