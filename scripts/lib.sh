# Shared by the project's scripts: the Python virtualenv and the moto server.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Creates virtualenv $1 from requirements file $2 once; later calls are
# instant until the requirements change.
ensure_venv() {
  local venv=$1 requirements=$2 stamp
  stamp="$venv/.installed-$(sha256sum "$requirements" | cut -c1-16)"
  if [[ ! -f "$stamp" ]]; then
    say "installing $(basename "$requirements") into $venv (once)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    touch "$stamp"
  fi
}

ensure_moto_venv() {
  ensure_venv "$VENV" "$ROOT/scripts/requirements-moto.txt"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until an HTTP server answers on 127.0.0.1:$1, at most $2 seconds.
wait_for_port() {
  local port=$1 deadline=$((SECONDS + ${2:-30}))
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null \
        || curl -sS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; do
    if ((SECONDS > deadline)); then return 1; fi
    sleep 0.2
  done
}

# Starts moto on a free port; sets MOTO_PID and exports MOTO_ENDPOINT. The
# caller must arrange stop_moto on EXIT.
start_moto() {
  ensure_moto_venv
  local port
  port=$(free_port)
  MOTO_LOG=${MOTO_LOG:-$(mktemp -t moto.XXXXXX.log)}
  # The seed README's ids (ssoins-12345/ps-12345), for the demo and the
  # end-to-end tests; every other test uses an instance of its own.
  MOTO_FIXED_PERMISSION_SETS=ssoins-12345=ps-12345 \
    "$VENV/bin/python" "$ROOT/scripts/moto_server.py" "$port" >"$MOTO_LOG" 2>&1 &
  MOTO_PID=$!
  if ! wait_for_port "$port" 30; then
    say "moto did not start; its log:"
    cat "$MOTO_LOG" >&2
    return 1
  fi
  export MOTO_ENDPOINT="http://127.0.0.1:$port"
  say "moto server on $MOTO_ENDPOINT (pid $MOTO_PID, log $MOTO_LOG)"
}

stop_moto() {
  if [[ -n "${MOTO_PID:-}" ]]; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    MOTO_PID=
  fi
}

# checkov, hadolint and shellcheck, pinned, in a virtualenv of their own
# (checkov pins a boto3 that would fight moto's).
LINT_VENV="$ROOT/.venv-lint"
ensure_lint_venv() {
  ensure_venv "$LINT_VENV" "$ROOT/scripts/requirements-lint.txt"
}

# Headless Chromium from Debian's packages, for the test that renders the
# report e-mail in a browser (crates/report-on-access/tests/email_in_browser.rs).
# Installed once; later calls return at once.
ensure_chromium() {
  if [[ -x /usr/bin/chromium ]]; then
    return 0
  fi
  say "installing chromium from Debian's packages (once)"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}
