// manage.js: whether this tab may create and change probes, and the prompt
// that takes the project's manage key when it may not (docs/api.md, keys).

import { h, fill } from './dom.js';
import { canManage, keepManageKey, forgetManageKey, keyOpensProject, session, MANAGE_PREFIX } from './api.js';

// A line for the top of a view: with a manage key, says so (a pasted one can
// be forgotten); without one, says the view is read-only and offers a field
// to paste the manage key.  onChange runs after the key was kept or dropped.
export function manageBox(onChange) {
	const el = h('div', { class: 'manage', id: 'manage-box' });
	const error = h('span', { class: 'form-error', id: 'manage-error', role: 'alert' });
	const input = h('input', {
		class: 'input', id: 'manage-key', type: 'password', autocomplete: 'off',
		placeholder: MANAGE_PREFIX + '…', 'aria-label': 'manage key',
	});

	async function paste(e) {
		e.preventDefault();
		const key = input.value.trim();
		error.textContent = '';
		if (!key.startsWith(MANAGE_PREFIX)) {
			error.textContent = `a manage key starts with ${MANAGE_PREFIX} ("codensm-server project manage-key ${session.project}" prints one)`;
			return;
		}
		try {
			if (!(await keyOpensProject(key))) {
				error.textContent = `that manage key is not accepted for project "${session.project}"`;
				return;
			}
		} catch (err) {
			error.textContent = `could not check the key: ${err.message || err}`;
			return;
		}
		keepManageKey(key);
		input.value = '';
		render();
		onChange();
	}

	// Drawn again only when the mode changes, so that a refresh never takes
	// the focus from a key being typed.
	let mode = '';
	function render() {
		const now = !canManage() ? 'read-only' : session.key.startsWith(MANAGE_PREFIX) ? 'own' : 'pasted';
		if (now === mode) return;
		mode = now;
		if (canManage()) {
			const pasted = now === 'pasted';
			fill(el,
				h('span', { class: 'badge manage-on' }, 'manage'),
				h('span', { class: 'muted' }, pasted
					? 'This tab manages probes with the manage key you pasted.'
					: 'This tab manages probes with the project\'s manage key.'),
				pasted ? h('button', {
					class: 'btn btn-small', id: 'manage-forget',
					onclick: () => { forgetManageKey(); render(); onChange(); },
				}, 'forget the manage key') : null);
			el.classList.remove('readonly');
			return;
		}
		el.classList.add('readonly');
		fill(el,
			h('span', { class: 'badge manage-off' }, 'read-only'),
			h('span', { class: 'muted' }, 'This dashboard key reads probes. Creating, renewing or removing one, and the automatic-probe setting, need the project\'s manage key:'),
			h('form', { class: 'manage-paste', id: 'manage-paste', onsubmit: paste },
				input, h('button', { class: 'btn', type: 'submit' }, 'Use manage key')),
			error);
	}

	render();
	return { el, render };
}
