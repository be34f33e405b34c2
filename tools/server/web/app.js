// app.js: the dashboard's entry point: session, tabs, window, live refresh.
// Each view in js/views/ mounts once and refreshes from the JSON API.

import { h, fill, $ } from './js/dom.js';
import { api, loadSession, saveSession, forgetKey, session, AuthError, NotFound } from './js/api.js';
import nsm from './js/views/nsm.js';
import departments from './js/views/departments.js';
import employees from './js/views/employees.js';
import office from './js/views/office.js';
import debt from './js/views/debt.js';
import underuse from './js/views/underuse.js';
import incidents from './js/views/incidents.js';
import probes from './js/views/probes.js';
import graph from './js/views/graph.js';
import prompt from './js/views/prompt.js';
import flow from './js/views/flow.js';
import code from './js/views/code.js';
import help from './js/views/help.js';

const VIEWS = [nsm, departments, employees, office, debt, underuse, incidents, probes, graph, flow, code, prompt, help];
const WINDOWS = ['1h', '24h', '7d', '30d'];
const REFRESH_MS = 5000; // a view may ask for another period (pollMs)

const ctx = {
	window: sessionStorage.getItem('codensm.window') || '24h',
	threshold: 10,
	fn: '',
	view: 'nsm',
	probeTarget: '', // asked of the Probes view by ctx.probe / ctx.showProbe
	probeId: '',
	api,
	refreshView: () => refresh(),
	select(name, view) {
		ctx.fn = name;
		show(view || 'graph');
	},
	// The Probes view, with its form open on this function (or, read-only,
	// asking for the manage key first).
	probe(name) {
		ctx.probeTarget = name;
		show('probes');
	},
	showProbe(id) {
		ctx.probeId = id;
		show('probes');
	},
};

const mounted = new Set();
let running = null; // the refresh in progress
let again = false;  // asked for another while one was running
let timer = 0;

function show(id) {
	const view = VIEWS.find((v) => v.id === id) || VIEWS[0];
	ctx.view = view.id;
	for (const v of VIEWS) {
		$(`#view-${v.id}`).hidden = v.id !== view.id;
		$(`#tab-${v.id}`).classList.toggle('active', v.id === view.id);
		$(`#tab-${v.id}`).setAttribute('aria-selected', String(v.id === view.id));
	}
	const frag = new URLSearchParams(location.hash.replace(/^#/, ''));
	frag.set('view', view.id);
	frag.delete('key');
	history.replaceState(null, '', '#' + frag.toString());
	schedule();
	return refresh();
}

// One refresh at a time, so an old answer can never paint over a newer one:
// a request made meanwhile runs once more when the current one ends.
function refresh() {
	if (running) {
		again = true;
		return running;
	}
	running = (async () => {
		do {
			again = false;
			await refreshOnce();
		} while (again);
		running = null;
	})();
	return running;
}

async function refreshOnce() {
	const view = VIEWS.find((v) => v.id === ctx.view);
	const root = $(`#view-${view.id}`);
	if (!mounted.has(view.id)) {
		view.mount(root, ctx);
		mounted.add(view.id);
	}
	document.body.classList.add('loading');
	try {
		await view.refresh(ctx);
		setStatus('');
		$('#updated').textContent = 'updated ' + new Date().toLocaleTimeString();
		document.body.dataset.ready = view.id; // the browser test waits on this
	} catch (e) {
		if (e instanceof AuthError) return askForKey('That dashboard key was not accepted.');
		if (e instanceof NotFound) return askForKey(e.message);
		setStatus(e.message || String(e));
	} finally {
		document.body.classList.remove('loading');
	}
}

function setStatus(text) {
	const el = $('#status');
	el.textContent = text;
	el.hidden = !text;
}

function schedule() {
	clearInterval(timer);
	const every = VIEWS.find((v) => v.id === ctx.view).pollMs || REFRESH_MS;
	if ($('#live').checked) timer = setInterval(() => { if (!running && !document.hidden) refresh(); }, every);
}

function askForKey(message) {
	forgetKey();
	clearInterval(timer);
	$('#app').hidden = true;
	document.body.classList.add('signed-out');
	const form = $('#login');
	form.hidden = false;
	$('#login-msg').textContent = message || '';
	$('#login-project').value = session.project;
	$('#login-key').value = '';
	(session.project ? $('#login-key') : $('#login-project')).focus();
}

function start() {
	$('#login').hidden = true;
	$('#app').hidden = false;
	document.body.classList.remove('signed-out');
	$('#project-name').textContent = session.project;
	document.title = `${session.project} · codensm`;
	const frag = new URLSearchParams(location.hash.replace(/^#/, ''));
	show(frag.get('view') || ctx.view);
}

function build() {
	fill($('#tabs'), VIEWS.map((v) => h('button', {
		id: `tab-${v.id}`, class: 'tab', role: 'tab', onclick: () => show(v.id),
	}, v.title)));
	fill($('#views'), VIEWS.map((v) => h('div', { id: `view-${v.id}`, class: 'view', role: 'tabpanel', hidden: true })));
	fill($('#windows'), WINDOWS.map((w) => h('button', {
		class: ['seg', w === ctx.window && 'active'], id: `win-${w}`,
		onclick: () => {
			ctx.window = w;
			sessionStorage.setItem('codensm.window', w);
			for (const b of $('#windows').children) b.classList.toggle('active', b.id === `win-${w}`);
			refresh();
		},
	}, w)));
	$('#live').addEventListener('change', schedule);
	$('#help-btn').addEventListener('click', () => show('help'));
	$('#login').addEventListener('submit', (e) => {
		e.preventDefault();
		const project = $('#login-project').value.trim();
		const key = $('#login-key').value.trim();
		if (!project || !key) return;
		saveSession(project, key);
		start();
	});
}

build();
if (loadSession()) start();
else askForKey('Open the dashboard address printed by "codensm-server project create", or enter the project and its dashboard key.');
