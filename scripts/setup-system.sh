#!/usr/bin/env bash
# System packages and services agentgym's sandboxes need. Idempotent; run as root
# (or a user with sudo). apt-get update runs only when a package is missing.
#   docker.io    - Docker engine for DockerSandbox
#   bubblewrap   - namespaces for LocalSandbox
#   debootstrap  - builds the base image without a registry
#   chromium     - ChromiumBrowser
#   python3-pytest python3-venv git - what coding tasks run inside LocalSandbox
#   jq zip unzip file bc procps xz-utils bzip2 sqlite3 make patch - the command-line tools
#                shell (Terminal) tasks expect; LocalSandbox uses the host's /usr, and
#                agentgym/sandboxes/image.py PACKAGES installs the same into the Docker image
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup-system.sh: run as root or install sudo" >&2; exit 1; fi
fi

PACKAGES=(docker.io bubblewrap debootstrap chromium python3-pytest python3-venv git
  jq zip unzip file bc procps xz-utils bzip2 sqlite3 make patch)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd (log: /tmp/dockerd.log)"
  # A new session with every inherited descriptor closed: a daemon must not keep open what its
  # caller held (e.g. the lock file of `flock LOCK make test`, which would then never be released).
  $SUDO python3 -c 'import subprocess; subprocess.Popen(["dockerd"], stdin=subprocess.DEVNULL, stdout=open("/tmp/dockerd.log", "ab"), stderr=subprocess.STDOUT, close_fds=True, start_new_session=True)'
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not answer within 60 s; see /tmp/dockerd.log" >&2; exit 1; }
fi
echo "system ready: docker $(docker version --format '{{.Server.Version}}'), bwrap $(bwrap --version | cut -d' ' -f2)"
