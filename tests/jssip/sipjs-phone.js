// A minimal SIP.js 0.21 phone for the browser e2e tests: registers and shows how it went in
// #reg ("registered", or "failed: <status>"). Query string: ws (wss://host:port), user,
// password, domain (default 127.0.0.1).
'use strict';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const log = (line) => { $('log').textContent += `${new Date().toISOString().slice(11, 23)} ${line}\n`; };

if (typeof SIP === 'undefined') {
  $('reg').textContent = 'failed: dist/sipjs.js missing (cd tests/jssip && npm ci && npm run build)';
  throw new Error('SIP.js not loaded');
}

const user = params.get('user');
const domain = params.get('domain') || '127.0.0.1';
const ua = new SIP.UserAgent({
  uri: SIP.UserAgent.makeURI(`sip:${user}@${domain}`),
  authorizationUsername: user,
  authorizationPassword: params.get('password'),
  transportOptions: { server: params.get('ws') },
  logLevel: 'warn',
});
const registerer = new SIP.Registerer(ua);
registerer.stateChange.addListener((state) => {
  log(`registerer ${state}`);
  if (state === SIP.RegistererState.Registered) {
    $('reg').textContent = 'registered';
  }
});
ua.start()
  .then(() => registerer.register({
    requestDelegate: {
      onReject: (response) => {
        const status = response.message.statusCode;
        log(`REGISTER rejected ${status}`);
        $('reg').textContent = `failed: ${status}`;
      },
    },
  }))
  .catch((e) => { log(`error ${e}`); $('reg').textContent = `failed: ${e}`; });
