// A minimal JsSIP softphone for the browser e2e tests. Query string: ws (wss://host:port),
// user, password, domain (default 127.0.0.1), debug=1 for JsSIP's own logging. The test reads
// #reg, #call, #from, #headers, #stats and #log, and clicks #answer, #hold, #unhold, #hangup,
// #dial (calls the number in #target) and #transfer (a blind REFER to it; #refer shows how
// it went).
'use strict';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const show = (id, text) => { $(id).textContent = text; };

function log(line) {
  const time = new Date().toISOString().slice(11, 23);
  $('log').textContent += `${time} ${line}\n`;
}

if (typeof JsSIP === 'undefined') {
  show('reg', 'failed: dist/jssip.js missing (cd tests/jssip && npm ci && npm run build)');
  throw new Error('JsSIP not loaded');
}
if (params.get('debug') === '1') {
  JsSIP.debug.enable('JsSIP:*');
} else {
  JsSIP.debug.disable();
}

const domain = params.get('domain') || '127.0.0.1';
const ua = new JsSIP.UA({
  sockets: [new JsSIP.WebSocketInterface(params.get('ws'))],
  uri: `sip:${params.get('user')}@${domain}`,
  password: params.get('password'),
  register: true,
  session_timers: false,
});

let session = null;
let statsTimer = null;

ua.on('connected', () => log('connected'));
ua.on('disconnected', (e) => log(`disconnected${e && e.error ? ' (error)' : ''}`));
ua.on('registered', () => { show('reg', 'registered'); log('registered'); });
ua.on('unregistered', () => { show('reg', 'unregistered'); log('unregistered'); });
ua.on('registrationFailed', (e) => {
  show('reg', `failed: ${e.cause}`);
  log(`registrationFailed ${e.cause}${e.response ? ` (${e.response.status_code})` : ''}`);
});

ua.on('newRTCSession', (e) => {
  const incoming = e.session;
  if (e.originator !== 'remote') {
    return;
  }
  const from = incoming.remote_identity;
  log(`newRTCSession from ${from.uri.toString()}`);
  if (session && !session.isEnded()) {
    log('busy: second call refused (486)');
    incoming.terminate({ status_code: 486 });
    return;
  }
  session = incoming;
  show('from', from.display_name ? `${from.display_name} <${from.uri.user}>` : from.uri.user);
  show('headers', e.request.getHeader('X-Sas-Call') || '');
  show('stats', '');
  show('call', 'ringing');
  watch(incoming);
});

function watchConnection(pc) {
  pc.addEventListener('track', (t) => {
    const audio = $('remote');
    audio.srcObject = t.streams[0] || new MediaStream([t.track]);
    audio.play().catch((err) => log(`audio play: ${err.name}`));
  });
  pc.addEventListener('iceconnectionstatechange', () => log(`ice ${pc.iceConnectionState}`));
  startStats(pc);
}

function watch(s) {
  const current = () => s === session;
  s.on('progress', () => log('progress'));
  // A call we place has its connection already; an incoming one gets it on answer.
  if (s.connection) {
    watchConnection(s.connection);
  } else {
    s.on('peerconnection', (e) => watchConnection(e.peerconnection));
  }
  s.on('accepted', () => log('accepted'));
  s.on('confirmed', () => { log('confirmed'); if (current()) show('call', 'answered'); });
  s.on('hold', (e) => { log(`hold (${e.originator})`); if (current()) show('call', 'on hold'); });
  s.on('unhold', (e) => {
    log(`unhold (${e.originator})`);
    if (current() && !s.isOnHold().local && !s.isOnHold().remote) show('call', 'answered');
  });
  s.on('peerconnection:setremotedescriptionfailed', (err) => log(`setRemoteDescription failed: ${err}`));
  s.on('getusermediafailed', (err) => log(`getUserMedia failed: ${err}`));
  s.on('ended', (e) => { log(`ended ${e.originator} ${e.cause}`); finish(s, `ended: ${e.cause}`); });
  s.on('failed', (e) => { log(`failed ${e.originator} ${e.cause}`); finish(s, `failed: ${e.cause}`); });
}

function finish(s, text) {
  if (s !== session) {
    return;
  }
  show('call', text);
  stopStats();
}

function startStats(pc) {
  stopStats();
  statsTimer = setInterval(() => refreshStats(pc), 250);
}

function stopStats() {
  if (statsTimer !== null) {
    clearInterval(statsTimer);
    statsTimer = null;
  }
}

async function refreshStats(pc) {
  if (pc.connectionState === 'closed') {
    return;
  }
  let inbound = 0;
  let level = 0;
  let outbound = 0;
  const report = await pc.getStats();
  report.forEach((stat) => {
    if (stat.kind !== 'audio') {
      return;
    }
    if (stat.type === 'inbound-rtp') {
      inbound += stat.packetsReceived || 0;
      level = Math.max(level, stat.audioLevel || 0);
    } else if (stat.type === 'outbound-rtp') {
      outbound += stat.packetsSent || 0;
    }
  });
  show('stats', `in ${inbound} level ${level.toFixed(4)} out ${outbound}`);
}

$('answer').addEventListener('click', () => {
  if (!session) return log('answer: no call');
  try {
    session.answer({ mediaConstraints: { audio: true, video: false } });
    log('answer');
  } catch (err) {
    log(`answer: ${err.message || err}`);
  }
});
$('hold').addEventListener('click', () => {
  if (session) log(`hold: ${session.hold() ? 'sent' : 'refused'}`);
});
$('unhold').addEventListener('click', () => {
  if (session) log(`unhold: ${session.unhold() ? 'sent' : 'refused'}`);
});
$('hangup').addEventListener('click', () => {
  if (!session || session.isEnded()) return log('hangup: no call');
  session.terminate();
  log('hangup');
});

$('dial').addEventListener('click', () => {
  if (session && !session.isEnded()) return log('dial: already on a call');
  const target = `sip:${$('target').value}@${domain}`;
  session = ua.call(target, { mediaConstraints: { audio: true, video: false } });
  show('call', 'calling');
  watch(session);
  log(`dial ${target}`);
});
$('transfer').addEventListener('click', () => {
  if (!session || session.isEnded()) return log('transfer: no call');
  const target = `sip:${$('target').value}@${domain}`;
  show('refer', 'sent');
  session.refer(target, {
    eventHandlers: {
      requestSucceeded: () => show('refer', 'accepted'),
      requestFailed: (e) => show('refer', `refused: ${e.cause}`),
      accepted: () => show('refer', 'succeeded'),
      failed: (e) => show('refer', `failed: ${e.cause}`),
    },
  });
  log(`transfer to ${target}`);
});

ua.start();
log(`started as ${params.get('user')}@${domain} on ${params.get('ws')}`);
