// dom.js: build the page from data without ever parsing data as HTML.
//
// Function names, files and incident chains come from the programs being
// watched, so they are untrusted: every string lands in the DOM as a text
// node or a property value, never through innerHTML.  The server's CSP
// (default-src 'self') is the second fence, not the first.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(el, kids) {
	for (const k of kids) {
		if (k === null || k === undefined || k === false) continue;
		if (Array.isArray(k)) append(el, k);
		else if (k instanceof Node) el.appendChild(k);
		else el.appendChild(document.createTextNode(String(k)));
	}
	return el;
}

function setProps(el, props, svg) {
	for (const [k, v] of Object.entries(props || {})) {
		if (v === null || v === undefined || v === false) continue;
		if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
		else if (k === 'dataset') Object.assign(el.dataset, v);
		else if (k === 'style') Object.assign(el.style, v); // CSSOM: allowed under CSP
		else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
		else if (svg || k.includes('-')) el.setAttribute(k, String(v));
		else el[k] = v;
	}
}

// h('td', {class: 'num'}, text, child...) -> element.  Strings become text nodes.
export function h(tag, props, ...kids) {
	const el = document.createElement(tag);
	setProps(el, props, false);
	return append(el, kids);
}

export function s(tag, props, ...kids) {
	const el = document.createElementNS(SVG_NS, tag);
	setProps(el, props, true);
	return append(el, kids);
}

export function clear(el) {
	while (el.firstChild) el.removeChild(el.firstChild);
	return el;
}

export function fill(el, ...kids) {
	return append(clear(el), kids);
}

export const $ = (sel, root = document) => root.querySelector(sel);

// ---- formatting: one place, so the page and the test agree on the text ----

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const numFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

export function fmtInt(n) {
	return n === null || n === undefined ? '–' : intFmt.format(n);
}

// The NSM can be fractional (value weights are numbers): up to two decimals.
export function fmtNum(n) {
	return n === null || n === undefined ? '–' : numFmt.format(n);
}

export function fmtPct(x, digits = 1) {
	if (x === null || x === undefined || Number.isNaN(x)) return '–';
	const p = x * 100;
	if (p !== 0 && Math.abs(p) < Math.pow(10, -digits)) return (p < 0 ? '>-' : '<') + Math.pow(10, -digits) + '%';
	return p.toFixed(digits) + '%';
}

export function fmtMs(ms) {
	if (ms === null || ms === undefined) return '–';
	if (ms === 0) return '0';
	if (ms < 0.001) return (ms * 1e6).toFixed(0) + ' ns';
	if (ms < 1) return (ms * 1000).toFixed(0) + ' µs';
	if (ms < 10) return ms.toFixed(2) + ' ms';
	if (ms < 1000) return ms.toFixed(1) + ' ms';
	if (ms < 60000) return (ms / 1000).toFixed(2) + ' s';
	return (ms / 60000).toFixed(1) + ' min';
}

const pad = (n) => String(n).padStart(2, '0');

export function fmtTime(t) {
	if (!t) return '–';
	const d = new Date(t * 1000);
	return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtAgo(t) {
	if (!t) return 'never';
	const s = Math.max(0, Date.now() / 1000 - t);
	if (s < 60) return `${Math.round(s)} s ago`;
	if (s < 3600) return `${Math.round(s / 60)} min ago`;
	if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
	return `${(s / 86400).toFixed(1)} d ago`;
}

// A time cell: relative text, the exact time on hover.
export function timeEl(t) {
	return h('span', { class: 'time', title: fmtTime(t) }, fmtAgo(t));
}

// A long dotted name as text with line-break chances after its separators
// (<wbr> elements: textContent stays exactly the name).
export function breakable(name) {
	const frag = document.createDocumentFragment();
	for (const part of String(name).split(/(?<=[./:])/)) {
		if (frag.firstChild) frag.appendChild(document.createElement('wbr'));
		frag.appendChild(document.createTextNode(part));
	}
	return frag;
}

export function fileLine(file, line) {
	if (!file) return '–';
	return line ? `${file}:${line}` : file;
}

export const STATES = ['working', 'failing', 'idle', 'underused', 'never_called'];
export const STATE_LABEL = {
	working: 'working',
	failing: 'failing',
	idle: 'idle',
	underused: 'underused',
	never_called: 'never called',
};

export function badge(state) {
	return h('span', { class: ['badge', 'st-' + state] }, STATE_LABEL[state] || state);
}

// A horizontal bar for a 0..1 ratio.
export function bar(ratio, cls) {
	const w = Math.max(0, Math.min(1, ratio || 0)) * 100;
	return h('span', { class: ['bar', cls] }, h('span', { class: 'bar-fill', style: { width: w + '%' } }));
}

export function empty(text) {
	return h('div', { class: 'empty' }, text);
}
