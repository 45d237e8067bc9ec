# Shared helpers for the curl walkthroughs in this folder; source it, do not run it.
#
#   request EXPECTED METHOD PATH [JSON_BODY] [EXTRA_CURL_ARGS...]
#       Runs curl against $BASE_URL (PATH may also be a full URL, such as a Link header's),
#       prints the command and the response (status, notable headers, pretty JSON), and stops
#       the script with a clear message when the status is not EXPECTED. A body is sent as
#       application/json unless CONTENT_TYPE says otherwise. Afterwards $STATUS, $BODY and
#       the response headers (see `header`) describe the response.
#   json FIELD_PATH     prints a field of $BODY: `json id`, `json 0.card_no`, `json errors.email`
#   header NAME         prints a response header of the last request (empty if absent)
#   next_link           prints the URL of the last response's Link rel="next" (empty if none)
#   expect DESCRIPTION ACTUAL EXPECTED   stops the script unless ACTUAL equals EXPECTED
#   expect_no_cvc       stops the script if the last response mentions card_cvc
#
# Every request sends `Authorization: Bearer $API_KEY`; set API_KEY to a key from
# `flask --app app create-api-key --name curl` (the first one is shown by `make run`). The printed
# commands show "$API_KEY", never the key. NO_AUTH=1 before a `request` sends it without the key.
#
# Needs only bash, curl and python3 (PYTHON=/path/to/python picks another interpreter).

BASE_URL=${BASE_URL:-http://localhost:8080}
PYTHON=${PYTHON:-python3}
BASE_URL=${BASE_URL%/}
# Unique per run, so emails and idempotency keys never collide with an earlier run. Dots, not
# dashes: the API refuses text holding a long digit run that could be a card number.
RUN_ID="$(date +%s).$$.$RANDOM"

_CURL_DIR=$(mktemp -d)
trap 'rm -rf "$_CURL_DIR"' EXIT
STATUS=
BODY=

if [ -t 1 ]; then _BOLD=$'\e[1m' _RED=$'\e[31m' _GREEN=$'\e[32m' _OFF=$'\e[0m'; else _BOLD= _RED= _GREEN= _OFF=; fi

step() { printf '\n%s== %s%s\n' "$_BOLD" "$*" "$_OFF"; }

fail() {
  printf '%sFAILED: %s%s\n' "$_RED" "$*" "$_OFF" >&2
  exit 1
}

request() {
  local expected=$1 method=$2 path=$3 body=${4-}
  shift 3
  if [ $# -gt 0 ]; then shift; fi
  local url=$path content_type=${CONTENT_TYPE:-application/json}
  case $url in http://* | https://*) ;; *) url=$BASE_URL$path ;; esac

  local shown="curl -X $method '$url'"
  local args=(--silent --show-error --max-time 30 -X "$method" -o "$_CURL_DIR/body" -D "$_CURL_DIR/headers" -w '%{http_code}')
  if [ -z "${NO_AUTH-}" ]; then
    [ -n "${API_KEY-}" ] || fail "API_KEY is not set. Make a key with: flask --app app create-api-key --name curl, then export API_KEY=<the key>."
    args+=(-H "Authorization: Bearer $API_KEY")
    shown="$shown -H \"Authorization: Bearer \$API_KEY\""
  fi
  if [ -n "$body" ]; then
    args+=(-H "Content-Type: $content_type" --data-binary "$body")
    shown="$shown -H 'Content-Type: $content_type' -d '$body'"
  fi
  local extra
  for extra in "$@"; do
    case $extra in -*) shown="$shown $extra" ;; *) shown="$shown '$extra'" ;; esac
  done
  printf '%s$ %s%s\n' "$_BOLD" "$shown" "$_OFF"

  STATUS=$(curl "${args[@]}" ${1+"$@"} "$url") ||
    fail "curl could not reach $url. Is the API running? Start it with 'make run', or set BASE_URL."
  BODY=$(cat "$_CURL_DIR/body")
  _show_response
  [ "$STATUS" = "$expected" ] || fail "$method $path answered HTTP $STATUS; expected $expected."
}

_show_response() {
  local colour=$_GREEN name value
  case $STATUS in 2*) ;; *) colour=$_RED ;; esac
  printf '%sHTTP %s%s\n' "$colour" "$STATUS" "$_OFF"
  for name in Content-Type Location Link Idempotent-Replayed Allow WWW-Authenticate; do
    value=$(header "$name")
    if [ -n "$value" ]; then printf '%s: %s\n' "$name" "$value"; fi
  done
  if [ -n "$BODY" ]; then
    printf '%s\n' "$BODY" | "$PYTHON" -m json.tool 2>/dev/null || printf '%s\n' "$BODY"
  fi
}

header() {
  awk -v name="$1" '
    BEGIN { name = tolower(name) }
    { sub(/\r$/, "") }
    index($0, ":") && tolower(substr($0, 1, index($0, ":") - 1)) == name {
      value = substr($0, index($0, ":") + 1); sub(/^[ \t]+/, "", value); print value; exit
    }' "$_CURL_DIR/headers"
}

next_link() {
  header Link | sed -n 's/^.*<\([^>]*\)>[[:space:]]*;[[:space:]]*rel="\{0,1\}next"\{0,1\}.*$/\1/p'
}

json() {
  printf '%s' "$BODY" | "$PYTHON" -c '
import json, sys
value = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    value = value[int(part)] if isinstance(value, list) else value[part]
print(value if isinstance(value, str) else json.dumps(value))
' "$1" || fail "the response has no field $1"
}

expect() {
  [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'."
  if [ ${#2} -le 80 ]; then
    printf '%sok%s %s: %s\n' "$_GREEN" "$_OFF" "$1" "$2"
  else
    printf '%sok%s %s\n' "$_GREEN" "$_OFF" "$1"
  fi
}

expect_no_cvc() {
  case $BODY in *card_cvc*) fail "the response mentions card_cvc" ;; esac
  printf '%sok%s no card_cvc in the response\n' "$_GREEN" "$_OFF"
}
