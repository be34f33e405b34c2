// probeform.js: the form that creates a probe on one function or prefix
// (POST probes, docs/api.md "Probes"): type, value, event, lifespan and
// the conditions of docs/probes.md.  The server validates; its one-line
// answer is shown next to the button.

import { h, fill } from './dom.js';
import { apiWrite } from './api.js';
import { suggest } from './picker.js';

// Per type: the values it records and the events it takes, defaults first
// (docs/probes.md, "Types and values").  Any other name is a user
// instrument registered in the program.
const TYPES = {
	hist: { values: ['duration'], events: ['return', 'end'], text: 'hist: latency histogram' },
	log: { values: ['duration'], events: ['return', 'call', 'end'], text: 'log: one record per event' },
	incr: { values: ['count', 'caller', 'thread', 'error'], events: ['call', 'return', 'end'], text: 'incr: a count, or counts by key' },
	stack: { values: ['chain'], events: ['call', 'return', 'end'], text: 'stack: the call chains, with counts' },
};
const USER = { values: ['duration', 'caller', 'thread', 'error', 'chain', 'count'], events: ['call', 'return', 'end'] };
const DEFAULT_LIFESPAN = 10; // minutes

function options(select, values) {
	const cur = select.value;
	fill(select, values.map((v) => h('option', { value: v }, v)));
	select.value = values.includes(cur) ? cur : values[0];
}

// The body of POST probes from the fields; '' fields are left out, so the
// runtime's defaults apply.
function specOf(f) {
	const type = f.type.value === 'user' ? f.userType.value.trim() : f.type.value;
	const instrument = { type, value: f.value.value, event: f.event.value };
	if (f.name.value.trim()) instrument.name = f.name.value.trim();
	const custom = {};
	if (f.minDur.value !== '') custom.min_duration_ms = Number(f.minDur.value);
	if (f.caller.value.trim()) custom.caller = f.caller.value.trim();
	if (f.errorsOnly.checked) custom.errors_only = true;
	if (f.sample.value !== '') custom.sample = Number(f.sample.value);
	if (f.maxHits.value !== '') custom.max_hits = Number(f.maxHits.value);
	if (Object.keys(custom).length) instrument.custom = custom;
	const body = { target: f.target.value.trim(), instrument };
	if (f.lifespan.value !== '') body.lifespan = Number(f.lifespan.value);
	if (f.id.value.trim()) body.id = f.id.value.trim();
	return body;
}

// onCreated(probe) runs with the server's answer; onCancel when closed.
export function probeForm(ctx, onCreated, onCancel) {
	const field = (tag, props, ...kids) => h(tag, { class: 'input', ...props }, ...kids);
	const f = {
		target: field('input', { id: 'pf-target', type: 'text', required: true, placeholder: 'function name or prefix', autocomplete: 'off' }),
		type: field('select', { id: 'pf-type' },
			Object.entries(TYPES).map(([t, d]) => h('option', { value: t }, d.text)),
			h('option', { value: 'user' }, 'user instrument…')),
		userType: field('input', { id: 'pf-user-type', type: 'text', placeholder: 'registered type name', hidden: true }),
		value: field('select', { id: 'pf-value' }),
		event: field('select', { id: 'pf-event' }),
		lifespan: field('input', { id: 'pf-lifespan', type: 'number', min: '0.1', max: '10080', step: 'any', value: String(DEFAULT_LIFESPAN) }),
		minDur: field('input', { id: 'pf-min-duration', type: 'number', min: '0', step: 'any', placeholder: 'any' }),
		caller: field('input', { id: 'pf-caller', type: 'text', placeholder: 'any caller', autocomplete: 'off' }),
		errorsOnly: h('input', { id: 'pf-errors-only', type: 'checkbox' }),
		sample: field('input', { id: 'pf-sample', type: 'number', min: '1', step: '1', placeholder: '1' }),
		maxHits: field('input', { id: 'pf-max-hits', type: 'number', min: '1', step: '1', placeholder: 'no limit' }),
		id: field('input', { id: 'pf-id', type: 'text', placeholder: 'automatic', autocomplete: 'off' }),
		name: field('input', { id: 'pf-name', type: 'text', placeholder: 'the id', autocomplete: 'off' }),
	};
	const error = h('span', { class: 'form-error', id: 'probe-form-error', role: 'alert' });
	const submit = h('button', { class: 'btn btn-primary', type: 'submit', id: 'probe-create' }, 'Create probe');

	const retype = () => {
		const d = TYPES[f.type.value] || USER;
		f.userType.hidden = f.type.value !== 'user';
		options(f.value, d.values);
		options(f.event, d.events);
	};
	f.type.addEventListener('change', retype);
	retype();

	const row = (label, ...kids) => h('label', { class: 'pf-field' }, h('span', { class: 'pf-label' }, label), ...kids);
	const form = h('form', {
		class: 'probe-form', id: 'probe-form', autocomplete: 'off',
		onsubmit: async (e) => {
			e.preventDefault();
			error.textContent = '';
			submit.disabled = true;
			try {
				const probe = await apiWrite('POST', 'probes', specOf(f));
				f.id.value = ''; // an id names one probe; the rest may serve the next
				onCreated(probe);
			} catch (err) {
				error.textContent = err.message || String(err);
			} finally {
				submit.disabled = false;
			}
		},
	},
	h('div', { class: 'pf-grid' },
		row('target', f.target, suggest(ctx, f.target)),
		row('type', f.type, f.userType),
		row('value', f.value),
		row('event', f.event),
		row('lifespan (min)', f.lifespan),
		row('id', f.id),
		row('name', f.name)),
	h('div', { class: 'pf-subtitle muted' }, 'Conditions (all optional)'),
	h('div', { class: 'pf-grid' },
		row('min duration (ms)', f.minDur),
		row('caller prefix', f.caller),
		row('sample 1 in N', f.sample),
		row('max hits', f.maxHits),
		h('label', { class: 'pf-field pf-check' }, f.errorsOnly, h('span', {}, 'errors only'))),
	h('div', { class: 'pf-actions' }, submit,
		h('button', { class: 'btn', type: 'button', id: 'probe-cancel', onclick: () => onCancel() }, 'Cancel'),
		error));

	return {
		el: form,
		// Prefill for a function: its name, the last type's defaults kept.
		open(target) {
			error.textContent = '';
			if (target) f.target.value = target;
			f.target.focus();
		},
	};
}
