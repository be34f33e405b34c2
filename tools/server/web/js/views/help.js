// views/help.js: what every number means; the same formulas as docs/api.md.

import { h, fill, badge } from '../dom.js';

const FORMULAS = [
	['NSM (North-Star Metric)', 'Σ over functions of value_weight × (calls − errors) in the window: business value of every successful call.'],
	['share', 'Of a function or department: its NSM / the project\'s NSM.'],
	['reliability', '1 − errors / calls (1 when there were no calls).'],
	['p50 / p95', 'From the merged latency histogram (interpolated inside a bucket). max is the longest single call.'],
	['self time', 'Time spent in the function itself, not in the tracked functions it called.'],
	['≈ (estimated)', 'With sampled timing (CODENSM_SAMPLE), the runtime reads the clock on some calls of its shortest functions only; the others count at the mean of those samples. Their p50, p95 and self time are marked ≈, and the mark\'s tooltip says how many calls were not clocked. Calls, errors and pairs are always exact.'],
	['OEE', 'availability × performance × reliability, where availability = functions of the department called in the window / functions known (inventory or seen), and performance = min(1, p50 over the last 30 days / p50 in the window).'],
	['debt', 'Of a function: error_rate × share. High when it is both fragile and load-bearing. The heatmap bins functions by error rate (y) and share (x); the trajectory sums debt over time.'],
	['underused', 'Fewer than threshold calls in the last 30 days, but some (threshold defaults to 10).'],
	['flow (CODENSM_MODE=full)', 'The control-flow shape `codensm analyze` found for a function, sent once per process by a program run with CODENSM_MODE=full: node kinds, counts and the names of the functions it calls, never source text.'],
	['complexity', 'decisions + loops + 1 (McCabe: one path, plus one per branch — if, case, catch, ?:, && and || — and per loop).'],
	['boilerplate / unique IP', 'Boilerplate: a trivial shape, no decision, no loop and at most 5 lines (getters, setters, thin wrappers). Every other analysed function is unique IP. Shares are of the analysed functions and of their NSM.'],
	['has tests', 'The function\'s identifier appears as code in a test file of the source tree (under test/, tests/ or t/, or named test_*.c, *_test.c; C++ alike).'],
	['load-bearing untested', 'Functions without tests that earned NSM in the window, most NSM first.'],
	['probe', 'A closer look at one function (or every function under a name prefix) of the running programs, for its lifespan in minutes, with no rebuild or restart: a latency histogram (hist), a log of its calls (log), counts by caller, thread or outcome (incr) or the call chains that reach it (stack). Each process learns it in the answer to its next ingest request and reports its status (INSTALLED, EMITTING, ERROR with the reason, EXPIRED) and results; it stops by itself. Creating, renewing and removing probes needs the project\'s manage key (cnsmm_...). See docs/probes.md.'],
	['root cause', 'Of an incident, three levels: (1) the failing chain; (2) what the automatic probe armed on the failing function caught since: occurrences, callers, threads, durations, chains; (3) what changed around the first occurrence: a new build of the service, a new caller, a latency shift of the function or its callees.'],
];

const STATES = [
	['failing', 'error rate ≥ 5% in the last 15 minutes, with at least one error'],
	['working', 'called in the last 15 minutes'],
	['underused', 'fewer than threshold calls in the last 30 days, but some'],
	['never_called', 'in the inventory, no calls ever'],
	['idle', 'anything else'],
];

export default {
	id: 'help',
	title: 'Help',

	mount(root) {
		fill(root, h('section', { class: 'card help' },
			h('div', { class: 'card-title' }, 'How the numbers are made'),
			h('p', {}, 'Every function is an employee: how often it works (calls), how reliably (errors), how fast (latency) and how much business value it earns (value_weight × successful calls). Departments, KPIs and one North-Star Metric roll up from there. Every figure on this page is also in the JSON API under /api/projects/NAME/ (docs/api.md).'),
			h('dl', { class: 'formulas', id: 'formulas' }, FORMULAS.map(([t, d]) => [h('dt', {}, t), h('dd', {}, d)])),
			h('div', { class: 'card-title' }, 'States'),
			h('dl', { class: 'formulas' }, STATES.map(([s, d]) => [h('dt', {}, badge(s)), h('dd', {}, d)])),
			h('div', { class: 'card-title' }, 'Windows'),
			h('p', {}, 'The window selector (last hour, 24 h, 7 d, 30 d) applies to every view; "underused" and OEE performance always look at 30 days. Live refresh reloads the current view every 5 seconds (the Probes view every 2 seconds).')));
	},

	async refresh() {},
};
