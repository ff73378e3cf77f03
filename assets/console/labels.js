// French labels of the API's words: an ARM reads no internal word. Unknown words are shown
// as they are (a new word of the router is better seen than hidden).

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

const LINES = {samu: "15", sas: "116 117", psy: "SAS Psy", escalade: "escalade"};

const QUEUES = {arm: "ARM", amu: "AMU", liberal: "libéral", osnp: "OSNP", psy: "psy",
  3114: "3114"};

/** Why a seat's part in a call ended (`left` of a handler, `detail` of `call_end`). */
const REASONS = {
  caller_bye: "l'appelant a raccroché", caller_cancel: "l'appelant a raccroché",
  seat_bye: "raccroché", seat_hangup: "raccroché", external_bye: "le correspondant a raccroché",
  transfer: "transféré", left: "a quitté l'appel", lost: "liaison audio perdue",
  seat_reset: "poste réinitialisé", replaced: "transfert assisté", dial_plan_hangup: "fin du parcours",
  shutdown: "arrêt du routeur",
};

const MODES = {blind: "direct", accompanied: "accompagné", attended: "assisté"};

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
  seat_state: "état", offer: "appel présenté", cancel: "appel retiré", connect: "en communication",
  audio: "audio", alert: "alerte", AUDIO: "audio",
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
export const queueLabel = (w) => pick(QUEUES, w);
export const reasonLabel = (w) => pick(REASONS, w);

/** A call file entry (JSON) in words. */
function fileLabel(detail) {
  try {
    const file = JSON.parse(detail);
    return Object.entries(file)
      .map(([key, value]) => (key === "decision" ? decisionLabel(value) : value))
      .join(" · ");
  } catch {
    return detail;
  }
}

/** The `detail` of an event or history line, in French: `kind` says how to read it. */
export function detailLabel(kind, detail) {
  const words = detail.split(" ");
  switch (kind.toLowerCase()) {
    case "pause": case "autopause": return pauseLabel(detail);
    case "qualify": return fileLabel(detail);
    case "call_end": case "left": return reasonLabel(detail);
    case "audio": return detail === "browser" ? "dans le navigateur" : "sur le téléphone";
    case "accompanied": return "à trois";
    // "samu arm NR": line, queue, priority.
    case "offer": return `${lineLabel(words[0])}, file ${queueLabel(words[1])}, ${words[2] ?? "NR"}`;
    // "amu blind" (CTI, REFER), "attended to amu1" (a phone's consultation handed over).
    case "transfer": return words[0] === "attended"
      ? `assisté vers ${words[2]}`
      : `${queueLabel(words[0])}, ${MODES[words[1]] ?? words[1] ?? ""}`;
    case "reset": return `par ${detail}`;
    default: return detail;
  }
}

/** One line of the call's route (the dial plan's trace) in French. */
const ROUTE = [
  [/^dialled by (\S+) to (\S+)$/, (m) => `composé par ${m[1]} vers ${m[2]}`],
  [/^transferred by (\S+) to [^/]+\/(\S+)$/, (m) => `transféré par ${m[1]} vers ${queueLabel(m[2])}`],
  [/^(\S+): queue (\S+) \(priority (\d+)(?:, greeting (\S+))?\)(?:, overflow after (\d+) s → (\S+))?$/,
    (m) => `${m[1]} : file ${queueLabel(m[2])} (priorité ${m[3]}${m[4] ? `, accueil ${m[4]}` : ""})`
      + (m[5] ? `, débordement après ${m[5]} s vers ${m[6]}` : "")],
  [/^(\S+): no seat within (\d+) s → overflow to (\S+)$/,
    (m) => `${m[1]} : aucun poste en ${m[2]} s, débordement vers ${m[3]}`],
  [/^(\S+): no seat can answer → overflow to (\S+)$/,
    (m) => `${m[1]} : aucun poste joignable, débordement vers ${m[2]}`],
  [/^(\S+): forward to (\S+) \((.+)\)$/, (m) => `${m[1]} : renvoi vers ${m[2]} (${m[3]})`],
  [/^(\S+): play (\S+), then (\S+)$/, (m) => `${m[1]} : message ${m[2]}, puis ${m[3]}`],
  [/^(\S+): menu (\S+), waiting (\d+) s for a key$/,
    (m) => `${m[1]} : menu ${m[2]}, touche attendue pendant ${m[3]} s`],
  [/^(\S+): key (\S) → (\S+)$/, (m) => `${m[1]} : touche ${m[2]} → ${m[3]}`],
  [/^(\S+): (no key|key (\S) is not a choice), (no retry left → (\S+)|asking again)$/,
    (m) => `${m[1]} : ${m[3] ? `touche ${m[3]} non prévue` : "aucune touche"}, `
      + (m[5] ? `plus d'essai → ${m[5]}` : "nouvel essai")],
  [/^(\S+): schedule (\S+) (open|closed) \((.*)\) → (\S+)$/,
    (m) => `${m[1]} : horaires ${m[2]} ${m[3] === "open" ? "ouverts" : "fermés"} (${m[4]}) → ${m[5]}`],
  [/^(\S+): tags (.*) → (\S+)$/, (m) => `${m[1]} : étiquettes ${m[2]} → ${m[3]}`],
  [/^(\S+): hang up(?: after (\S+))?$/,
    (m) => `${m[1]} : fin d'appel${m[2] ? ` après ${m[2]}` : ""}`],
  [/^(\S+): dial plan error \((.*)\): hang up$/, (m) => `${m[1]} : erreur du plan (${m[2]}), fin d'appel`],
];

export function routeLabel(line) {
  for (const [pattern, say] of ROUTE) {
    const m = line.match(pattern);
    if (m) return say(m);
  }
  return line;
}
