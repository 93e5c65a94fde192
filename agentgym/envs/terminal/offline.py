"""Offline stand-ins for the installers Harbor verifiers call, so tasks written for a networked runner still grade.

Harbor's (and terminal-bench's) usual ``tests/test.sh`` installs its tools when it starts:
``apt-get install curl``, ``curl -LsSf https://astral.sh/uv/install.sh | sh``, ``uv venv``,
``uv pip install pytest``, ``uv run pytest ...``, ``uvx pytest``. The verifier has no network, so
these run as the small scripts below instead, first on the verifier's ``PATH``:

* ``apt-get``/``apt``: ``update`` and friends succeed; ``install`` succeeds when every package is
  already installed in the image or stood in for here (``curl``, ``wget``, ``python3-pip``,
  ``python-is-python3``), else it fails, naming what is missing;
* ``pip``/``pip3``: ``install`` succeeds when every requirement is already installed;
* ``curl``/``wget``: the uv installer URL yields a script that installs nothing (uv is below);
  anything else is the real tool, which fails without network;
* ``uv``: ``venv`` makes an activate script that changes nothing, ``pip install`` is ``pip``'s,
  ``run pytest|python ...`` runs the system's ``python3``; ``uvx pytest`` likewise;
* ``python``: the system's ``python3`` when the image has no ``python``;
* ``pytest``: the image's pytest, without the options of report plugins the image lacks
  (``--ctrf FILE`` of pytest-json-ctrf, which Harbor's template asks ``uvx --with`` for).

They are written by the host into the fresh verifier sandbox (never by the agent), so they are
as trusted as the image's own tools. A verifier that needs something really missing still fails,
with a message that says what.
"""

from __future__ import annotations

SHIM_DIR = "/logs/.agentgym/bin"
"""In the verifier-only ``/logs`` mount (``/tmp`` may be ``noexec``); the agent never has a ``/logs``."""

_APT = r"""#!/bin/bash
# agentgym verifier (offline): package installs succeed when the packages are already in the image.
cmd=""; pkgs=()
for a in "$@"; do
  case "$a" in
    -*) ;;
    install) cmd=install ;;
    update|upgrade|clean|autoclean|autoremove|dist-upgrade) cmd=${cmd:-$a} ;;
    *) [ "$cmd" = install ] && pkgs+=("${a%%=*}") ;;
  esac
done
if [ "$cmd" = install ]; then
  missing=()
  for p in "${pkgs[@]}"; do
    case "$p" in curl|wget|python-is-python3|python3-pip) continue ;; esac  # stood in by the scripts beside this one
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "agentgym (offline verifier): cannot install ${missing[*]}: not in the image" >&2
    exit 100
  fi
fi
exit 0
"""

_PIP = r"""#!/bin/bash
# agentgym verifier (offline): `pip install X` succeeds when X is installed already.
if [ "$1" != install ]; then echo "agentgym (offline verifier): pip $1 is not available" >&2; exit 2; fi
shift; missing=()
while [ $# -gt 0 ]; do
  case "$1" in
    -r|--requirement|-c|--constraint|-i|--index-url|--extra-index-url|-f|--find-links|--target|-t) shift 2 ;;
    -*) shift ;;
    *) name="${1%%[<>=!~;[ ]*}"
       python3 -c 'import importlib.metadata as m, sys; m.distribution(sys.argv[1])' "$name" 2>/dev/null \
         || missing+=("$1")
       shift ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "agentgym (offline verifier): cannot install ${missing[*]}: not in the image" >&2
  exit 1
fi
exit 0
"""

_FETCH = r"""#!/bin/bash
# agentgym verifier (offline): the uv installer installs nothing (uv is a stand-in); the rest is the real tool.
for a in "$@"; do
  case "$a" in
    *astral.sh/uv*|*astral.sh/*install*)
      printf '%s\n' 'mkdir -p "$HOME/.local/bin" && : > "$HOME/.local/bin/env"'
      exit 0 ;;
  esac
done
for real in /usr/bin/TOOL /bin/TOOL; do [ -x "$real" ] && exec "$real" "$@"; done
echo "agentgym (offline verifier): TOOL is not available and there is no network" >&2
exit 7
"""

_UV = r"""#!/bin/bash
# agentgym verifier (offline): uv with the system's Python as every environment.
sub="$1"; shift
case "$sub" in
  venv)
    dir=.venv
    for a in "$@"; do case "$a" in -*) ;; *) dir="$a" ;; esac; done
    mkdir -p "$dir/bin" && printf 'export VIRTUAL_ENV=%s\n' "$PWD/$dir" > "$dir/bin/activate"
    exit 0 ;;
  pip)
    [ "$1" = install ] && shift
    exec "$(dirname "$0")/pip" install "$@" ;;
  run)
    while [ $# -gt 0 ]; do
      case "$1" in
        --with|--python|-p|--project|--directory|--with-requirements) shift 2 ;;
        --) shift; break ;;
        -*) shift ;;
        *) break ;;
      esac
    done
    case "$1" in
      pytest|py.test) shift; exec "$(dirname "$0")/pytest" "$@" ;;
      python|python3) shift; exec python3 "$@" ;;
    esac
    exec "$@" ;;
  init|sync|add|lock|self) exit 0 ;;
  *) echo "agentgym (offline verifier): uv $sub is not available" >&2; exit 2 ;;
esac
"""

_UVX = r"""#!/bin/bash
# agentgym verifier (offline): uvx pytest is the system's pytest.
while [ $# -gt 0 ]; do
  case "$1" in
    --with|--from|--python|-p) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
tool="$1"; shift
case "$tool" in
  pytest|pytest==*|pytest@*|py.test) exec "$(dirname "$0")/pytest" "$@" ;;
esac
echo "agentgym (offline verifier): uvx $tool is not available" >&2
exit 2
"""

_PYTEST = r"""#!/bin/bash
# agentgym verifier (offline): the image's pytest. Options of report plugins the image lacks (Harbor's test.sh asks
# `uvx --with pytest-json-ctrf pytest --ctrf /logs/verifier/ctrf.json`) are dropped: they only write a log.
has() { python3 -c 'import importlib.metadata as m, sys; m.distribution(sys.argv[1])' "$1" 2>/dev/null; }
args=()
ctrf=1; has pytest-json-ctrf || ctrf=0
jrep=1; has pytest-json-report || jrep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --ctrf) [ $ctrf = 1 ] && args+=("$1" "$2"); shift 2; continue ;;
    --ctrf=*) [ $ctrf = 1 ] && args+=("$1"); shift; continue ;;
    --json-report|--json-report-file=*|--json-report-indent=*|--json-report-omit=*)
      [ $jrep = 1 ] && args+=("$1"); shift; continue ;;
    --json-report-file|--json-report-indent) [ $jrep = 1 ] && args+=("$1" "$2"); shift 2; continue ;;
  esac
  args+=("$1"); shift
done
exec python3 -m pytest "${args[@]}"
"""

_PYTHON = r"""#!/bin/bash
for real in /usr/local/bin/python /usr/bin/python; do [ -x "$real" ] && exec "$real" "$@"; done
exec python3 "$@"
"""

SHIMS: dict[str, str] = {
    "apt-get": _APT,
    "apt": _APT,
    "pip": _PIP,
    "pip3": _PIP,
    "curl": _FETCH.replace("TOOL", "curl"),
    "wget": _FETCH.replace("TOOL", "wget"),
    "uv": _UV,
    "uvx": _UVX,
    "python": _PYTHON,
    "pytest": _PYTEST,
    "py.test": _PYTEST,
}
"""File name -> script, written into :data:`SHIM_DIR` of the verifier sandbox."""
