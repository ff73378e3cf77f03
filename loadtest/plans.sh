# Sourced by the load drivers.
# plans_without_greeting DIR: the shipped dial plans copied to DIR, the samu plan without its
# greeting, hold music and reassurance, so that the seat's answer is the caller's 200.
plans_without_greeting() {
  cp -r dialplans "$1"
  sed -i '/^greeting = "accueil-15"/d; /^hold = "musique-attente"/d; /^reassurance/d' "$1/samu.toml"
}
