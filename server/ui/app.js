// SPDX-License-Identifier: MIT
// vmferry's web page: the images the token can see, where each runs,
// the state of its VM on the server (GET .../vm), "Run on server",
// "Stop" and "Display" (its screen, in noVNC: below), and the command
// to run one locally.  Uses the same API as the
// command line (docs/protocol.md) with the token in the Authorization
// header; the token is kept in sessionStorage only.
'use strict';

const KEY = 'vmferry-token';
const $ = (id) => document.getElementById(id);
// How often the list is read: fast while a run is on its way between
// two states, so each one shows.
const POLL_MS = 2000;
const POLL_BUSY_MS = 500;
const TRANSITIONAL = ['starting', 'stopping', 'saving'];
let timer = null;
// The latest GET .../vm answer of each image whose VM this page has seen
// on the server (name -> state); an image is asked about while its
// lease says remote or its run has not ended, and once at login.
const vms = new Map();
// Images whose VM the token may not see (403: no run grant).
const noRun = new Set();
let firstList = true;

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

// The words for a VM's state on the server, from GET .../vm.
function vmWords(vm) {
	switch (vm.state) {
	case 'stopped':
		return vm.unchanged ?
			'stopped: disk unchanged, no new version (still ' +
				vm.version + ')' :
			'stopped: its disk is version ' + vm.version;
	case 'failed':
		return 'failed: ' + vm.error;
	case 'saving':
		return 'saving its disk as a new version';
	case 'starting':
	case 'running':
	case 'stopping':
		return vm.state + ' (from version ' + vm.base + ')';
	default:
		return '';
	}
}

// Should the page ask for name's VM state now?
function wantVm(img) {
	if (noRun.has(img.name))
		return false;
	if (firstList || (img.lease && img.lease.where === 'remote'))
		return true;
	const vm = vms.get(img.name);
	return vm !== undefined && TRANSITIONAL.concat(['running']).includes(vm.state);
}

async function readVms(images) {
	await Promise.all(images.filter(wantVm).map(async (img) => {
		try {
			const vm = await api('GET', '/v1/images/' +
				encodeURIComponent(img.name) + '/vm');
			if (vm.state === 'none')
				vms.delete(img.name);
			else
				vms.set(img.name, vm);
		} catch (e) {
			if (e.status === 403)
				noRun.add(img.name);
		}
	}));
	firstList = false;
}

function button(cls, text, fn) {
	const b = document.createElement('button');
	b.type = 'button';
	b.className = cls;
	b.textContent = text;
	b.addEventListener('click', fn);
	return b;
}

// The display view: noVNC (served by the server from Debian's novnc
// package, an ES module) on the VM's VNC WebSocket.  A browser cannot
// put the token on a WebSocket, so the page asks for a ticket with it
// (POST .../vnc/ticket: once, for 30 s) and puts that in the URL.
let rfb = null;

function closeDisplay() {
	if (rfb)
		rfb.disconnect();
	rfb = null;
	$('screen').replaceChildren();
	$('display').hidden = true;
	$('display').dataset.state = 'closed';
}

async function display(name) {
	const path = '/v1/images/' + encodeURIComponent(name) + '/vnc';
	let RFB, t;
	try {
		RFB = (await import('/ui/novnc/core/rfb.js')).default;
	} catch (e) {
		say('The display needs noVNC on the server (Debian package ' +
			'novnc): ' + e.message, true);
		return;
	}
	try {
		t = await api('POST', path + '/ticket');
	} catch (e) {
		say(name + ': ' + e.message, true);
		return;
	}
	closeDisplay();
	$('display').hidden = false;
	$('display').dataset.state = 'connecting';
	$('display-name').textContent = name;
	rfb = new RFB($('screen'), 'wss://' + location.host + path +
		'?ticket=' + encodeURIComponent(t.ticket),
		{ wsProtocols: ['binary'] });
	rfb.scaleViewport = false;
	rfb.addEventListener('connect', () => {
		$('display').dataset.state = 'connected';
		say(name + ': display connected');
	});
	rfb.addEventListener('disconnect', (ev) => {
		$('display').dataset.state = 'disconnected';
		say(name + ': display ' + (ev.detail.clean ? 'closed' :
			'connection lost'), !ev.detail.clean);
	});
}

async function act(method, name, done) {
	try {
		const vm = await api(method, '/v1/images/' +
			encodeURIComponent(name) + '/vm');
		if (vm && vm.state)
			vms.set(name, vm);
		say(done);
	} catch (e) {
		say(name + ': ' + e.message, true);
	}
	refresh();
}

function row(img) {
	const tr = document.createElement('tr');
	const [st, words] = state(img);
	const vm = vms.get(img.name);
	tr.dataset.image = img.name;
	tr.dataset.state = st;
	tr.dataset.vm = vm ? vm.state : 'none';
	const cells = [img.name, String(img.version), size(img.size), words,
		vm ? vmWords(vm) : ''];
	cells.forEach((text, i) => {
		const td = document.createElement('td');
		td.textContent = text;
		if (i === 3)
			td.className = 'state ' + st;
		if (i === 4)
			td.className = 'vm ' + (vm ? vm.state : 'none');
		tr.appendChild(td);
	});
	const actions = document.createElement('td');
	if (st === 'idle')
		actions.appendChild(button('run', 'Run on server', () =>
			act('POST', img.name, img.name + ': starting on the server')));
	else if (st === 'remote' && (!vm || vm.state === 'running' ||
				     vm.state === 'starting'))
		actions.appendChild(button('stop', 'Stop', () =>
			act('DELETE', img.name, img.name + ': stopping')));
	if (vm && vm.state === 'running')
		actions.appendChild(button('display', 'Display', () =>
			display(img.name)));
	tr.appendChild(actions);
	const cmd = document.createElement('td');
	const code = document.createElement('code');
	code.className = 'command';
	code.textContent = 'vmferry run ' + location.origin + '/' + img.name + ' --local';
	cmd.appendChild(code);
	tr.appendChild(cmd);
	return tr;
}

// Read the list (and the VM states) again after a while: sooner while
// a run is between two states.
function schedule() {
	clearTimeout(timer);
	let busy = false;
	vms.forEach((vm) => {
		busy = busy || TRANSITIONAL.includes(vm.state);
	});
	timer = setTimeout(refresh, busy ? POLL_BUSY_MS : POLL_MS);
}

async function refresh() {
	clearTimeout(timer);
	if (!token())
		return schedule();
	try {
		await draw();
	} finally {
		schedule();
	}
}

async function draw() {
	let list;
	try {
		list = await api('GET', '/v1/images');
		await readVms(list.images);
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
	closeDisplay();
	sessionStorage.removeItem(KEY);
	vms.clear();
	noRun.clear();
	firstList = true;
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
	$('display-close').addEventListener('click', closeDisplay);
	$('logout').addEventListener('click', () => {
		logout();
		say('Logged out');
	});
	refresh();
});
