// French labels of the API's words; unknown words are shown as they are.

const STATES = {
  offline: "hors ligne (téléphone non enregistré)",
  available: "disponible",
  ringing: "sonnerie",
  busy: "en communication",
  wrap_up: "post-appel",
  paused: "en pause",
};

const PAUSES = {
  requested: "pause demandée",
  break: "pause",
  other_task: "autre tâche",
  ring_no_answer: "appel non décroché",
  rejected: "appel refusé",
  unreachable: "téléphone injoignable",
  logged_out: "console déconnectée",
};

const LINES = {samu: "15", sas: "116 117", escalade: "escalade"};

export const DECISIONS = {
  conseil_medical: "Conseil médical",
  teleconsultation: "Téléconsultation",
  rdv_snp48h: "RDV soins non programmés sous 48 h",
  orientation_urgences: "Orientation aux urgences",
  smur: "SMUR",
  transport_sanitaire: "Transport sanitaire",
  visite_domicile: "Visite à domicile",
  maison_medicale_garde: "Maison médicale de garde",
  3114: "3114 (prévention du suicide)",
};

const EVENTS = {
  seat_state: "état", offer: "appel présenté", connect: "en communication",
  transfer: "transfert demandé", accompanied: "conférence à trois", left: "a quitté l'appel",
  call_end: "fin d'appel", pause: "pause", unpause: "reprise", login: "connexion",
  logout: "déconnexion", qualify: "qualification", lagged: "événements perdus",
  autopause: "pause automatique", seat_autopaused: "pause automatique",
  seat_miss_burst: "appels non décrochés en rafale (surcharge ?)",
  STATE: "état", OFFER: "appel présenté", CONNECT: "en communication", TRANSFER: "transfert",
  ACCOMPANIED: "conférence à trois", LEFT: "a quitté l'appel", CALL_END: "fin d'appel",
  PAUSE: "pause", UNPAUSE: "reprise", LOGIN: "connexion", LOGOUT: "déconnexion",
  QUALIFY: "qualification", RESET: "remise à zéro", AUTOPAUSE: "pause automatique",
};

const ROLES = {arm: "ARM", regulateur_amu: "régulateur AMU",
  regulateur_liberal: "régulateur libéral", superviseur: "superviseur"};

const pick = (table, word) => table[word] ?? word ?? "—";
export const stateLabel = (w) => pick(STATES, w);
export const pauseLabel = (w) => pick(PAUSES, w);
export const lineLabel = (w) => pick(LINES, w);
export const eventLabel = (w) => pick(EVENTS, w);
export const roleLabel = (w) => pick(ROLES, w);
export const decisionLabel = (w) => pick(DECISIONS, w);

/** The `detail` word of an event or history line, in French (a call file is JSON). */
export function detailLabel(kind, detail) {
  if (["pause", "autopause"].includes(kind.toLowerCase())) return pauseLabel(detail);
  if (kind.toLowerCase() !== "qualify") return detail;
  try {
    const file = JSON.parse(detail);
    return Object.entries(file)
      .map(([key, value]) => (key === "decision" ? decisionLabel(value) : value))
      .join(" · ");
  } catch {
    return detail;
  }
}
