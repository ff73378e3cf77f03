// Everything about authentication lives here. The session is the router's HttpOnly,
// SameSite=Strict cookie set at login: no script (ours or an injected one) can read it, and
// other sites cannot send it. Every request carries `X-Sas-Console: 1`, the header the router
// requires on cookie-authenticated POSTs (a cross-site form cannot add it).

let session = false;

/** An error answer of the router: `status` and its `{"error": …}` sentence. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(json) {
  const h = {"X-Sas-Console": "1"};
  if (json) h["Content-Type"] = "application/json";
  return h;
}

/** A JSON request; resolves to the answer's body, rejects with an ApiError. */
export async function request(method, path, body) {
  const json = body !== undefined;
  const r = await fetch(path, {method, headers: headers(json),
    body: json ? JSON.stringify(body) : undefined, credentials: "same-origin"});
  const answer = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, answer?.error ?? `HTTP ${r.status}`);
  return answer;
}

/** Opens a session (the router sets the cookie); resolves to `{seat, role, supervisor, status}`. */
export async function login(seat, password) {
  const answer = await request("POST", "/api/cti/login", {seat, password});
  session = true;
  return answer;
}

/** Ends the session on the router (which clears the cookie) and forgets it here. */
export async function logout() {
  try {
    await request("POST", "/api/cti/logout");
  } finally {
    session = false;
  }
}

export function loggedIn() {
  return session;
}

/** Forgets a session the router no longer knows (401). */
export function forget() {
  session = false;
}

/** The WebSocket address of an event route: same origin, so the cookie goes with it. */
export function eventsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}`;
}
