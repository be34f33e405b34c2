// picker.js: choose a function by typing part of its name; suggestions come
// from the server's functions search, so it scales to any number of them.

import { h, fill } from './dom.js';

let seq = 0;

// Give `input` a datalist of the functions whose name or file holds what is
// typed; returns the datalist, which the caller places next to the input.
export function suggest(ctx, input) {
	const id = 'fnlist-' + (++seq);
	const list = h('datalist', { id });
	input.setAttribute('list', id);
	let timer = 0;
	input.addEventListener('input', () => {
		clearTimeout(timer);
		timer = setTimeout(async () => {
			const q = input.value.trim();
			try {
				const data = await ctx.api('functions', { window: ctx.window, q, sort: 'calls', order: 'desc', limit: 20 });
				fill(list, data.rows.map((r) => h('option', { value: r.name }, r.department)));
			} catch (e) { /* suggestions are a convenience */ }
		}, 200);
	});
	return list;
}

export function picker(ctx, onPick) {
	const input = h('input', {
		type: 'search', class: 'input input-wide', placeholder: 'Function name…', autocomplete: 'off',
	});
	const list = suggest(ctx, input);
	const go = () => { if (input.value.trim()) onPick(input.value.trim()); };
	input.addEventListener('change', go);
	input.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
	const el = h('div', { class: 'picker' }, input, list, h('button', { class: 'btn', onclick: go }, 'Show'));
	return { el, input, set: (name) => { input.value = name || ''; } };
}
