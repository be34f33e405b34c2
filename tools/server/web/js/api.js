// api.js: the dashboard key and every call to /api/ (docs/api.md).
//
// The key arrives in the URL fragment (#project=NAME&key=cnsmv_...), which
// browsers never send to the server.  It is kept in sessionStorage (gone with
// the tab), wiped from the visible URL, and sent as a Bearer token.
//
// Writes (probes, settings) need the project's manage key (cnsmm_...): the
// session's key when the page was opened with one, else one pasted into
// this tab (kept in sessionStorage with the project it was pasted for).

const STORE_PROJECT = 'codensm.project';
const STORE_KEY = 'codensm.key';
const STORE_MANAGE = 'codensm.manage';
export const MANAGE_PREFIX = 'cnsmm_';

export class AuthError extends Error {}
export class NotFound extends Error {}

export const session = {
	project: '',
	key: '',
};

// Read #project=..&key=.. once, keep it, and leave only the project in the URL.
export function loadSession() {
	const frag = new URLSearchParams(location.hash.replace(/^#/, ''));
	const project = frag.get('project');
	const key = frag.get('key');
	if (project) sessionStorage.setItem(STORE_PROJECT, project);
	if (key) sessionStorage.setItem(STORE_KEY, key);
	session.project = sessionStorage.getItem(STORE_PROJECT) || '';
	session.key = sessionStorage.getItem(STORE_KEY) || '';
	if (key || frag.has('key')) {
		frag.delete('key');
		const rest = frag.toString();
		history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
	}
	return session.project !== '' && session.key !== '';
}

export function saveSession(project, key) {
	session.project = project;
	session.key = key;
	sessionStorage.setItem(STORE_PROJECT, project);
	sessionStorage.setItem(STORE_KEY, key);
	history.replaceState(null, '', location.pathname + location.search + '#project=' + encodeURIComponent(project));
}

export function forgetKey() {
	session.key = '';
	sessionStorage.removeItem(STORE_KEY);
}

// The key writes are sent with, or '' when this tab can only read.
export function manageKey() {
	if (session.key.startsWith(MANAGE_PREFIX)) return session.key;
	try {
		const kept = JSON.parse(sessionStorage.getItem(STORE_MANAGE) || 'null');
		if (kept && kept.project === session.project && typeof kept.key === 'string') return kept.key;
	} catch (e) { /* a damaged entry reads as none */ }
	return '';
}

export const canManage = () => manageKey() !== '';

// Keep a pasted manage key for this project, in this tab only.
export function keepManageKey(key) {
	sessionStorage.setItem(STORE_MANAGE, JSON.stringify({ project: session.project, key }));
}

export function forgetManageKey() {
	sessionStorage.removeItem(STORE_MANAGE);
}

// Is `key` accepted for this project?  A GET with it: 401 (unknown key)
// or 404 (another project's) says no.
export async function keyOpensProject(key) {
	const res = await fetch(`/api/projects/${encodeURIComponent(session.project)}/settings`, {
		headers: { Authorization: `Bearer ${key}`, Accept: 'application/json' },
		cache: 'no-store',
		credentials: 'omit',
	});
	return res.ok;
}

// POST/PUT/DELETE /api/projects/{project}/{path} with the manage key and a
// JSON body; resolves to the JSON answer.  A refusal rejects with the
// server's one-line reason (a 401 also forgets a pasted key, which was
// replaced or belongs to another server).
export async function apiWrite(method, path, body) {
	const key = manageKey();
	if (!key) throw new Error(`this key is read-only: ${method} ${path} needs the project's manage key (${MANAGE_PREFIX}...)`);
	const res = await fetch(`/api/projects/${encodeURIComponent(session.project)}/${path}`, {
		method,
		headers: { Authorization: `Bearer ${key}`, Accept: 'application/json', 'Content-Type': 'application/json' },
		body: body === undefined ? undefined : JSON.stringify(body),
		cache: 'no-store',
		credentials: 'omit',
	});
	let answer = null;
	try {
		answer = await res.json();
	} catch (e) {
		answer = null;
	}
	if (res.status === 401 && key !== session.key) forgetManageKey();
	if (!res.ok) throw new Error((answer && answer.error) || `${method} ${path}: HTTP ${res.status}`);
	return answer;
}

// GET /api/projects/{project}/{path}?params; resolves to the parsed JSON.
// opts.item: a 404 means that item (a probe) is gone, not the project.
export async function api(path, params = {}, opts = {}) {
	const qs = new URLSearchParams();
	for (const [k, v] of Object.entries(params)) {
		if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
	}
	const url = `/api/projects/${encodeURIComponent(session.project)}/${path}` + (qs.toString() ? '?' + qs : '');
	const res = await fetch(url, {
		headers: { Authorization: `Bearer ${session.key}`, Accept: 'application/json' },
		cache: 'no-store',
		credentials: 'omit',
	});
	if (res.status === 401) throw new AuthError('missing or wrong dashboard key');
	let body = null;
	try {
		body = await res.json();
	} catch (e) {
		body = null;
	}
	// A 404 for a named function (graph, prompt) is about that function; any
	// other 404 means this key does not open this project.
	if (res.status === 404 && !params.fn && !opts.item) throw new NotFound(`no project "${session.project}" for this key`);
	if (!body) throw new Error(`${path}: HTTP ${res.status}, not JSON`);
	if (!res.ok) throw new Error(`${path}: HTTP ${res.status}: ${(body && body.error) || ''}`);
	return body;
}

// GET an endpoint that answers a document rather than JSON (flow.svg):
// resolves to its text; an error answer (JSON) becomes an Error.
export async function apiText(path, params = {}) {
	const qs = new URLSearchParams(params);
	const url = `/api/projects/${encodeURIComponent(session.project)}/${path}?${qs}`;
	const res = await fetch(url, {
		headers: { Authorization: `Bearer ${session.key}` },
		cache: 'no-store',
		credentials: 'omit',
	});
	if (res.status === 401) throw new AuthError('missing or wrong dashboard key');
	const text = await res.text();
	if (!res.ok) {
		let msg = text;
		try { msg = JSON.parse(text).error; } catch (e) { /* not JSON */ }
		throw new Error(`${path}: HTTP ${res.status}: ${msg}`);
	}
	return text;
}
