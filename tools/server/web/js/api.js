// api.js: the dashboard key and every call to /api/ (docs/api.md).
//
// The key arrives in the URL fragment (#project=NAME&key=cnsmv_...), which
// browsers never send to the server.  It is kept in sessionStorage (gone with
// the tab), wiped from the visible URL, and sent as a Bearer token.

const STORE_PROJECT = 'codensm.project';
const STORE_KEY = 'codensm.key';

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

// GET /api/projects/{project}/{path}?params; resolves to the parsed JSON.
export async function api(path, params = {}) {
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
	if (res.status === 404 && !params.fn) throw new NotFound(`no project "${session.project}" for this key`);
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
