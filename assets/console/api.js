// Everything about authentication lives here. The session token stays in memory (never in
// localStorage, where any script of the origin could read it after the tab closed); when
// the router moves to HttpOnly cookie sessions, only `headers()`, `login()` and
// `eventsUrl()` change.

let token = null;

/** An error answer of the router: `status` and its `{"error": …}` sentence. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(json) {
  // Marks the console's requests (the CSRF header of the cookie sessions will sit here).
  const h = {"X-Sas-Console": "1"};
  if (json) h["Content-Type"] = "application/json";
  if (token) h.Authorization = `Bearer ${token}`;
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

/** Opens a session; resolves to `{seat, role, supervisor, status}`. */
export async function login(seat, password) {
  const answer = await request("POST", "/api/cti/login", {seat, password});
  token = answer.token;
  return answer;
}

/** Ends the session on the router (best effort) and forgets it here. */
export async function logout() {
  try {
    await request("POST", "/api/cti/logout");
  } finally {
    token = null;
  }
}

export function loggedIn() {
  return token !== null;
}

/** Forgets a session the router no longer knows (401). */
export function forget() {
  token = null;
}

/** The WebSocket address of an event route (browsers cannot set headers on it). */
export function eventsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}?token=${encodeURIComponent(token)}`;
}
