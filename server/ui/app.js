// SPDX-License-Identifier: MIT
// vmferry's web page: the images the token can see, where each runs,
// "Run on server" and "Stop", and the command to run one locally.  Uses
// the same API as the command line (docs/protocol.md) with the token in
// the Authorization header; the token is kept in sessionStorage only.
'use strict';

const KEY = 'vmferry-token';
const $ = (id) => document.getElementById(id);
let timer = null;

function token() {
	return sessionStorage.getItem(KEY);
}

function say(text, error) {
	$('message').textContent = text || '';
	$('message').className = error ? 'error' : '';
}

async function api(method, path) {
	const r = await fetch(path, {
		method: method,
		headers: { 'Authorization': 'Bearer ' + token() },
		cache: 'no-store',
	});
	let body = null;
	try {
		body = await r.json();
	} catch (e) {
		body = null;
	}
	if (!r.ok) {
		const err = new Error((body && body.error) || ('HTTP ' + r.status));
		err.status = r.status;
		throw err;
	}
	return body;
}

function utc(t) {
	return new Date(t * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

function size(n) {
	const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (n >= 1024 && i < units.length - 1) {
		n /= 1024;
		i++;
	}
	return n.toFixed(i ? 1 : 0) + ' ' + units[i];
}

// "idle", "local" or "remote", and the words for it.
function state(img) {
	const l = img.lease;
	if (!l)
		return ['idle', 'idle'];
	if (l.where === 'remote')
		return ['remote', 'running on the server (started by ' +
			l.holder + ', since ' + utc(l.since) + ')'];
	return ['local', 'running locally (' + l.holder + ', since ' +
		utc(l.since) + ')'];
}

function button(cls, text, fn) {
	const b = document.createElement('button');
	b.type = 'button';
	b.className = cls;
	b.textContent = text;
	b.addEventListener('click', fn);
	return b;
}

async function act(method, name, done) {
	try {
		await api(method, '/v1/images/' + encodeURIComponent(name) + '/vm');
		say(done);
	} catch (e) {
		say(name + ': ' + e.message, true);
	}
	refresh();
}

function row(img) {
	const tr = document.createElement('tr');
	const [st, words] = state(img);
	tr.dataset.image = img.name;
	tr.dataset.state = st;
	const cells = [img.name, String(img.version), size(img.size), words];
	cells.forEach((text, i) => {
		const td = document.createElement('td');
		td.textContent = text;
		if (i === 3)
			td.className = 'state ' + st;
		tr.appendChild(td);
	});
	const actions = document.createElement('td');
	if (st === 'idle')
		actions.appendChild(button('run', 'Run on server', () =>
			act('POST', img.name, img.name + ': starting on the server')));
	else if (st === 'remote')
		actions.appendChild(button('stop', 'Stop', () =>
			act('DELETE', img.name, img.name + ': stopping')));
	tr.appendChild(actions);
	const cmd = document.createElement('td');
	const code = document.createElement('code');
	code.className = 'command';
	code.textContent = 'vmferry run ' + location.origin + '/' + img.name + ' --local';
	cmd.appendChild(code);
	tr.appendChild(cmd);
	return tr;
}

async function refresh() {
	if (!token())
		return;
	let list;
	try {
		list = await api('GET', '/v1/images');
	} catch (e) {
		if (e.status === 401) {
			logout();
			say('The server refused the token: ' + e.message, true);
		} else {
			say(e.message, true);
		}
		return;
	}
	const body = document.querySelector('#images tbody');
	body.replaceChildren(...list.images.map(row));
	$('list').hidden = false;
	$('login').hidden = true;
	$('logout').hidden = false;
	$('who').textContent = list.images.length + ' image' +
		(list.images.length === 1 ? '' : 's');
}

function logout() {
	sessionStorage.removeItem(KEY);
	$('list').hidden = true;
	$('login').hidden = false;
	$('logout').hidden = true;
	$('who').textContent = '';
}

document.addEventListener('DOMContentLoaded', () => {
	$('login').addEventListener('submit', (ev) => {
		ev.preventDefault();
		sessionStorage.setItem(KEY, $('token').value.trim());
		$('token').value = '';
		say('');
		refresh();
	});
	$('logout').addEventListener('click', () => {
		logout();
		say('Logged out');
	});
	refresh();
	timer = setInterval(refresh, 2000);
});
