// proberesults.js: a probe's processes and results as the page shows them
// (docs/api.md "Probes"): per-process status, and by instrument type the
// histogram's figures, the log tail, the counts by key, the chains.

import { h, fmtInt, fmtMs, fmtTime, fmtPct, timeEl, bar, empty } from './dom.js';
import { HIST_COLORS } from './charts.js';

export const STATUSES = ['RECEIVED', 'INSTALLED', 'EMITTING', 'ERROR', 'EXPIRED'];

// "9 min 12 s" left; 'expired' at or below zero.
export function fmtLeft(s) {
	if (s === null || s === undefined) return '–';
	if (s <= 0) return 'expired';
	s = Math.round(s);
	if (s < 60) return `${s} s`;
	if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
	if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
	return `${(s / 86400).toFixed(1)} d`;
}

// Unix seconds from what the API gives: a number, or an ISO-8601 string.
export function unixOf(t) {
	if (typeof t === 'number') return t;
	const ms = Date.parse(t || '');
	return Number.isNaN(ms) ? 0 : ms / 1000;
}

export function statusBadge(status, message) {
	return h('span', { class: ['badge', 'ps', 'ps-' + String(status || '').toLowerCase()], title: message || '' }, status || '–');
}

export function stateBadge(state) {
	return h('span', { class: ['badge', 'pst-' + state] }, state);
}

export function processesTable(procs) {
	if (!procs || !procs.length) return empty('No process has reported this probe yet: a program learns it in the answer to its next ingest request.');
	return h('table', { class: 'grid', id: 'probe-processes' },
		h('thead', {}, h('tr', {}, ['service', 'host', 'pid', 'status', 'hits', 'last seen', 'time left']
			.map((t, i) => h('th', { class: [2, 4].includes(i) ? 'num' : '' }, t)))),
		h('tbody', {}, procs.map((p) => h('tr', { dataset: { pid: String(p.pid), host: p.host || '' } },
			h('td', { class: 'name' }, p.service || '–'),
			h('td', { class: 'name' }, p.host || '–'),
			h('td', { class: 'num' }, String(p.pid)),
			h('td', { class: 'c-status' }, statusBadge(p.status, p.message),
				p.message ? h('span', { class: 'ps-message' }, p.message) : null),
			h('td', { class: 'num c-hits' }, fmtInt(p.hits)),
			h('td', { class: 'time' }, p.last_seen ? timeEl(unixOf(p.last_seen)) : '–'),
			h('td', { class: 'c-left' }, fmtLeft(p.expires_in_s))))));
}

function stat(label, value, id, color) {
	return h('div', { class: 'stat' },
		h('div', { class: 'stat-value', id }, color ? h('span', { class: 'swatch', style: { background: color } }) : null, value),
		h('div', { class: 'stat-label' }, label));
}

export function histStats(r) {
	return h('div', { class: 'probe-stats' },
		stat('count', fmtInt(r.count || 0), 'probe-count'),
		stat('p50', fmtMs(r.p50_ms), 'probe-p50', HIST_COLORS.p50),
		stat('p95', fmtMs(r.p95_ms), 'probe-p95', HIST_COLORS.p95),
		stat('p99', fmtMs(r.p99_ms), 'probe-p99', HIST_COLORS.p99),
		stat('max', fmtMs(r.max_ms), 'probe-max'));
}

export function countStats(r) {
	return h('div', { class: 'probe-stats' }, stat('count', fmtInt(r.count || 0), 'probe-count'));
}

export function logTable(r) {
	const recs = r.log || [];
	return [
		h('div', { class: 'card-title' }, `Log tail (${fmtInt(recs.length)} newest)`,
			r.log_dropped ? h('span', { class: 'muted', id: 'probe-log-dropped' }, ` · ${fmtInt(r.log_dropped)} records over the rate limit not kept`) : null),
		recs.length ? h('div', { class: 'table-scroll log-scroll' }, h('table', { class: 'grid dense', id: 'probe-log' },
			h('thead', {}, h('tr', {}, ['time', 'service', 'host', 'pid', 'thread', 'caller', 'duration', 'error', 'event']
				.map((t, i) => h('th', { class: [3, 4, 6].includes(i) ? 'num' : '' }, t)))),
			h('tbody', {}, recs.map((x) => h('tr', { class: x.error ? 'row-error' : '' },
				h('td', { class: 'time' }, fmtTime(x.t) + fracOf(x.t)),
				h('td', { class: 'name' }, x.service || '–'),
				h('td', { class: 'name' }, x.host || '–'),
				h('td', { class: 'num' }, x.pid === undefined ? '–' : String(x.pid)),
				h('td', { class: 'num' }, x.thread === undefined ? '–' : String(x.thread)),
				h('td', { class: 'fn' }, x.caller || '–'),
				h('td', { class: 'num' }, fmtMs(x.duration_ms)),
				h('td', { class: 'c-error' }, x.error ? 'error' : ''),
				h('td', {}, x.event || '–')))))) : empty('No record yet.'),
	];
}

// ".123": the milliseconds of a record's time, which fmtTime leaves out.
function fracOf(t) {
	const ms = Math.floor((t % 1) * 1000);
	return '.' + String(ms).padStart(3, '0');
}

export function byTable(r) {
	const rows = [...(r.by || [])].sort((a, b) => b.count - a.count);
	if (!rows.length) return null;
	const total = rows.reduce((n, x) => n + x.count, 0) || 1;
	return [
		h('div', { class: 'card-title' }, 'Counts by key'),
		h('table', { class: 'grid', id: 'probe-by' },
			h('thead', {}, h('tr', {}, h('th', {}, 'key'), h('th', { class: 'num' }, 'count'), h('th', {}, 'share'))),
			h('tbody', {}, rows.map((x) => h('tr', {},
				h('td', { class: 'fn' }, x.key),
				h('td', { class: 'num' }, fmtInt(x.count)),
				h('td', { class: 'share-cell' }, bar(x.count / total, 'bar-blue'), h('span', { class: 'num' }, fmtPct(x.count / total))))))),
	];
}

export function chainList(stacks, other, id) {
	const rows = [...(stacks || [])].sort((a, b) => b.count - a.count);
	if (!rows.length) return empty('No chain yet.');
	return h('div', { class: 'chains', id },
		rows.map((s) => h('div', { class: 'chain-row' },
			h('span', { class: 'chain-count' }, `×${fmtInt(s.count)}`),
			h('ol', { class: 'chain' }, s.chain.map((name, i) => h('li', { class: i === s.chain.length - 1 ? 'chain-probed' : '' },
				h('span', { class: 'fn' }, name)))))),
		other ? h('div', { class: 'muted small' }, `${fmtInt(other)} more events, in chains past the 32 distinct ones kept`) : null);
}
