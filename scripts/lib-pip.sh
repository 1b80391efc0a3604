# sluice_pip_install PACKAGE...: installs Python packages for the test tooling with pip, on the
# machines' Python (pyenv's) or on a fresh Debian 12 as root, whose system Python has no pip
# (installed here from Debian's python3-pip) and refuses pip installs without
# --break-system-packages (PEP 668; tried second).
sluice_pip_install() {
  if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "==> installing python3-pip (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  python3 -m pip install -q --disable-pip-version-check "$@" 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages "$@"
}
