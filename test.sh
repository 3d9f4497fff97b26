#!/usr/bin/env bash
# The whole test suite, on any machine with one stable Rust toolchain, Python 3.11 and Node 20:
# installs what the tests need when it is missing (cached, so only the first run pays), then
# runs every test. `.ci/run` calls exactly this after formatting and lints.
#
#   tansu 0.6.0    Kafka-protocol broker for the export tests; built once with cargo (~15-20 min
#                  on 2 cores) into ~/.cache/fusion-tools, skipped when `tansu` is on PATH
#   localstripe    Stripe emulator for the card tests (PyPI, pinned)
#   cryptography   Ed25519 for docs/verify_journal.py, the independent journal verifier (PyPI)
#   aiosmtpd       an SMTP server for the receipt-email n8n template's test (PyPI, pinned)
#   systemd        for `systemd-analyze verify` of the unit files (Debian package)
#   n8n 1.70.0     installed by its test on first use into ~/.cache/fusion-n8n (npm, ~3 min)
#   chromium       Debian's, for the register's browser test; playwright-core 1.65.2 (npm) is
#                  installed by that test into ~/.cache/fusion-playwright
#
# Arguments go to `cargo test --workspace` (e.g. `./test.sh orders` runs the tests named so).
set -euo pipefail
cd "$(dirname "$0")"

TOOLS="${FUSION_TOOLS_DIR:-$HOME/.cache/fusion-tools}"
export PATH="$TOOLS/bin:$PATH"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

say() { echo "test.sh: $*" >&2; }

if ! command -v tansu >/dev/null; then
    say "building tansu 0.6.0 into $TOOLS (once; 15-20 min on 2 cores)"
    # Its own target dir: the workspace's stays small, and a failed build is resumed next time.
    CARGO_TARGET_DIR="$TOOLS/build" cargo install --locked tansu --version 0.6.0 \
        --features dynostore,libsql --root "$TOOLS"
    rm -rf "$TOOLS/build"
fi

if ! python3 -c 'import localstripe' 2>/dev/null; then
    say "installing localstripe from PyPI"
    python3 -m pip install --quiet localstripe==1.15.10 \
        || python3 -m pip install --quiet --user localstripe==1.15.10
fi

if ! python3 -c 'import cryptography.hazmat.primitives.asymmetric.ed25519' 2>/dev/null; then
    say "installing cryptography from PyPI (the journal verifier's Ed25519)"
    python3 -m pip install --quiet 'cryptography>=41' \
        || python3 -m pip install --quiet --user 'cryptography>=41'
fi

if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    say "installing aiosmtpd from PyPI (the SMTP server of the receipt-email test)"
    python3 -m pip install --quiet aiosmtpd==1.4.6 \
        || python3 -m pip install --quiet --user aiosmtpd==1.4.6
fi

if ! command -v systemd-analyze >/dev/null; then
    say "installing systemd (for systemd-analyze)"
    $SUDO apt-get update -q && $SUDO apt-get install -y -q systemd
fi

if [ ! -x /usr/bin/chromium ]; then
    say "installing chromium (the register's browser tests; Playwright drives it)"
    $SUDO apt-get update -q && $SUDO apt-get install -y -q chromium
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    say "installing Node.js and npm (for the n8n test)"
    $SUDO apt-get update -q && $SUDO apt-get install -y -q nodejs npm
fi

cargo test --workspace "$@"
