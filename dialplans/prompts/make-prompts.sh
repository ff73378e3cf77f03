#!/usr/bin/env bash
# Generates the default French announcement prompts of sas-router (8000 Hz, mono, 16-bit PCM).
#
# Speech: espeak-ng (voice fr+f3, 150 words/min), resampled by sox and normalised to -3 dBFS.
# Numbers are written as said aloud: "31 14" is "trente et un quatorze", the official reading;
# the 116 117 is spelt out because espeak-ng reads "116 117" as "cent seize mille cent dix-sept".
# Hold music: a soft sine arpeggio built with sox `synth` (no third-party audio, no rights).
#
# Deterministic: fixed parameters, sox in repeatable mode (-R) and without dither (-D), so the
# same espeak-ng and sox versions give byte-identical files. Another espeak-ng version may
# pronounce slightly differently and change the speech files a little.
#
# Usage: dialplans/prompts/make-prompts.sh [output-dir]   (default: this script's directory)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here}"
mkdir -p "$out"

need=()
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
if ((${#need[@]})); then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

VOICE="fr+f3"
SPEED=150
PITCH=50

# speak STEM TEXT: one spoken prompt, 0.3 s of tail so the last word is not cut.
speak() {
    local stem="$1" text="$2"
    espeak-ng -v "$VOICE" -s "$SPEED" -p "$PITCH" -w "$work/$stem.raw.wav" "$text"
    sox -R -D "$work/$stem.raw.wav" -b 16 -c 1 -e signed-integer "$out/$stem.wav" \
        rate -v 8000 pad 0 0.3 norm -3
    echo "$out/$stem.wav"
}

speak accueil-15 "Vous êtes bien au SAMU, centre 15. Ne quittez pas, un assistant de régulation médicale va vous répondre."
speak accueil-116117 "Vous êtes bien au service d'accès aux soins et à la permanence des soins, cent seize, cent dix-sept. Ne quittez pas, nous allons vous répondre."
speak attente "Tous nos assistants sont en ligne. Restez en ligne, votre appel va être pris en charge."
speak fermeture "Le service est actuellement fermé. En cas d'urgence vitale, composez le 15."
speak menu-116117 "Pour une demande de soins non urgente, tapez 1. Pour une détresse psychologique, tapez 2. Pour toute autre demande, restez en ligne."
speak menu-psy "Si votre vie ou celle d'un proche est en danger immédiat, tapez 1. Sinon, restez en ligne, un professionnel de l'écoute va vous répondre."
speak transfert-3114 "Nous vous mettons en relation avec le 31 14, numéro national de prévention du suicide."

# Hold music: I-vi-IV-V (C, Am, F, G) arpeggiated, 10 notes of 0.5 s per chord, 20 s in all
# (exactly 1000 RTP frames, so looping adds no padding). Every note fades in and out to
# zero, so the file loops without a click. Notes lie in 349-1047 Hz, inside the telephone
# band (300-3400 Hz) that G.711 networks pass.
chords=(
    "523.25 659.26 783.99 1046.50" # C5 E5 G5 C6
    "440.00 523.25 659.26 880.00"  # A4 C5 E5 A5
    "349.23 440.00 523.25 698.46"  # F4 A4 C5 F5
    "392.00 493.88 587.33 783.99"  # G4 B4 D5 G5
)
pattern=(0 1 2 3 2 1 0 1 2 1) # up, down, and back: a gentle rocking figure
notes=()
n=0
for chord in "${chords[@]}"; do
    read -r -a f <<<"$chord"
    for i in "${pattern[@]}"; do
        note="$work/note-$(printf %02d "$n").wav"
        sox -R -D -n -r 8000 -b 16 -c 1 -e signed-integer "$note" \
            synth 0.5 sine "${f[$i]}" fade q 0.02 0.5 0.4
        notes+=("$note")
        n=$((n + 1))
    done
done
# Low level: peaks at -20 dBFS, so the music sits well under the speech prompts (-3 dBFS).
sox -R -D "${notes[@]}" -b 16 -c 1 -e signed-integer "$out/musique-attente.wav" norm -20
echo "$out/musique-attente.wav"
