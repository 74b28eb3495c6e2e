# Sourced by the benchmark scripts: installs Debian's golang-go when `go` is
# not on PATH. `$1` names the calling script in the message.
if ! command -v go >/dev/null 2>&1; then
    echo "$1: go not found; installing Debian's golang-go" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    # `env` so the assignment also works when `$sudo` is empty.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y golang-go >&2
fi
