#!/usr/bin/env bash
# Installs the Debian packages that are missing. Each argument is
# PACKAGE:PROBE, where PROBE is a command name or an absolute path glob that
# exists once PACKAGE is installed. Needs root when something is missing. No
# service is started: policy-rc.d forbids it during the install.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
need=()
for arg in "$@"; do
  pkg=${arg%%:*} probe=${arg#*:}
  if [[ $probe == /* ]]; then
    compgen -G "$probe" >/dev/null && continue
  else
    command -v "$probe" >/dev/null 2>&1 && continue
  fi
  need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing ${need[*]}: run as root or install them" >&2
  exit 1
fi
echo "== installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
own_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  own_policy=1
fi
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
