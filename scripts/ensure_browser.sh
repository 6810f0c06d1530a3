#!/usr/bin/env bash
# Make headless Chromium, its WebDriver and a CJK font available for the map/figure tests.
#
# Idempotent and never fatal: exits 0 in every case. Does nothing when
# /usr/bin/chromium, /usr/bin/chromedriver and a CJK font are present; else,
# as root with apt-get, installs the Debian packages chromium, chromium-driver
# and fonts-noto-cjk; otherwise says which tests will be skipped.
set -u

have_cjk_font() {
    if command -v fc-list >/dev/null 2>&1; then
        fc-list 2>/dev/null | grep -qiE 'CJK|WenQuanYi|Source Han|SimHei|Droid Sans Fallback' && return 0
    fi
    ls /usr/share/fonts/opentype/noto/NotoSansCJK-*.ttc >/dev/null 2>&1
}

have_all() {
    [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && have_cjk_font
}

if have_all; then
    echo "ensure_browser: chromium, chromedriver and a CJK font are present"
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure_browser: installing chromium chromium-driver fonts-noto-cjk (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq \
        && apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-noto-cjk fontconfig >/dev/null; then
        fc-cache -f >/dev/null 2>&1 || true
    else
        echo "ensure_browser: apt-get failed; browser tests will be skipped" >&2
    fi
fi

if have_all; then
    echo "ensure_browser: ready"
else
    missing=""
    [ -x /usr/bin/chromium ] || missing="$missing /usr/bin/chromium"
    [ -x /usr/bin/chromedriver ] || missing="$missing /usr/bin/chromedriver"
    have_cjk_font || missing="$missing CJK-font"
    echo "ensure_browser: missing:$missing -- the browser map tests (tests/test_maps.py) will be skipped"
    echo "  and the CJK figure tests need a CJK font; as root run:"
    echo "  apt-get update && apt-get install -y chromium chromium-driver fonts-noto-cjk"
fi
exit 0
