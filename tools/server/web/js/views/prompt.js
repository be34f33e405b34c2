// views/prompt.js: the server's ready-to-paste AI fix prompt for a function,
// with a copy button (Clipboard API, or a selected textarea where it is denied).

import { h, fill, empty } from '../dom.js';
import { picker } from '../picker.js';

export async function copyText(text, textarea) {
	try {
		if (navigator.clipboard && window.isSecureContext) {
			await navigator.clipboard.writeText(text);
			return true;
		}
	} catch (e) { /* fall back below */ }
	const ta = textarea || h('textarea', { className: 'offscreen' });
	if (!textarea) document.body.appendChild(ta);
	ta.value = text;
	ta.focus();
	ta.select();
	let ok = false;
	try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
	if (!textarea) ta.remove();
	return ok;
}

export default {
	id: 'prompt',
	title: 'AI fix prompt',

	mount(root, ctx) {
		this.pick = picker(ctx, (name) => ctx.select(name, 'prompt'));
		this.text = h('textarea', { id: 'prompt-text', class: 'prompt-text', readOnly: true, spellcheck: false });
		this.status = h('span', { class: 'copy-status', id: 'copy-status', role: 'status' });
		this.copy = h('button', {
			class: 'btn btn-primary', id: 'copy-prompt',
			onclick: async () => {
				const ok = await copyText(this.text.value, this.text);
				this.status.textContent = ok ? 'Copied to the clipboard.' : 'Copy failed: the text is selected, press Ctrl+C.';
				this.status.className = 'copy-status ' + (ok ? 'ok' : 'warn');
			},
		}, 'Copy');
		this.body = h('div', {});
		this.title = h('div', { class: 'card-title' }, 'AI fix prompt');
		fill(root, h('section', { class: 'card' },
			h('div', { class: 'toolbar' }, this.title, h('span', { class: 'spacer' }), this.pick.el),
			h('p', { class: 'hint' }, 'Paste this into your AI assistant: it carries the function\'s file:line, its stats, error rate, incident chains and callers.'),
			this.body));
	},

	async refresh(ctx) {
		if (!ctx.fn) {
			const top = await ctx.api('functions', { window: ctx.window, sort: 'error_rate', order: 'desc', limit: 1 });
			if (!top.rows.length) return fill(this.body, empty('No function has been called yet.'));
			ctx.fn = top.rows[0].name;
		}
		this.pick.set(ctx.fn);
		const p = await ctx.api('prompt', { fn: ctx.fn, window: ctx.window });
		if (this.text.value !== p.prompt) {
			this.text.value = p.prompt;
			this.status.textContent = '';
		}
		this.title.textContent = 'AI fix prompt for ';
		this.title.appendChild(h('span', { class: 'fn' }, p.name));
		if (!this.body.firstChild || this.body.firstChild !== this.text) {
			fill(this.body, h('div', { class: 'toolbar' }, this.copy, this.status), this.text);
		}
	},
};
