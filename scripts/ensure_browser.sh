#!/usr/bin/env bash
# Make headless Chromium, its WebDriver, a CJK font and LibreOffice (Calc + Writer) available
# for the map/figure tests and the printed-workbook/report tests.
#
# Idempotent and never fatal: exits 0 in every case. Does nothing when
# /usr/bin/chromium, /usr/bin/chromedriver, a CJK font and soffice are present;
# else, as root with apt-get, installs the missing Debian packages (chromium,
# chromium-driver, fonts-noto-cjk; libreoffice-calc, libreoffice-writer with
# --no-install-recommends); otherwise says which tests will be skipped.
set -u

have_cjk_font() {
    if command -v fc-list >/dev/null 2>&1; then
        fc-list 2>/dev/null | grep -qiE 'CJK|WenQuanYi|Source Han|SimHei|Droid Sans Fallback' && return 0
    fi
    ls /usr/share/fonts/opentype/noto/NotoSansCJK-*.ttc >/dev/null 2>&1
}

have_browser() {
    [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && have_cjk_font
}

have_office() {
    command -v soffice >/dev/null 2>&1
}

have_all() {
    have_browser && have_office
}

if have_all; then
    echo "ensure_browser: chromium, chromedriver, a CJK font and LibreOffice (soffice) are present"
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    updated=""
    if ! have_browser; then
        echo "ensure_browser: installing chromium chromium-driver fonts-noto-cjk (Debian packages)"
        if apt-get update -qq && updated=1 \
            && apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-noto-cjk fontconfig >/dev/null; then
            fc-cache -f >/dev/null 2>&1 || true
        else
            echo "ensure_browser: apt-get failed; browser tests will be skipped" >&2
        fi
    fi
    if ! have_office; then
        echo "ensure_browser: installing libreoffice-calc libreoffice-writer (Debian packages, no recommends)"
        if { [ -n "$updated" ] || apt-get update -qq; } \
            && apt-get install -y -qq --no-install-recommends libreoffice-calc libreoffice-writer >/dev/null; then
            :
        else
            echo "ensure_browser: apt-get failed for LibreOffice; the PDF page-count tests will be skipped" >&2
        fi
    fi
fi

if have_all; then
    echo "ensure_browser: ready"
else
    if ! have_browser; then
        missing=""
        [ -x /usr/bin/chromium ] || missing="$missing /usr/bin/chromium"
        [ -x /usr/bin/chromedriver ] || missing="$missing /usr/bin/chromedriver"
        have_cjk_font || missing="$missing CJK-font"
        echo "ensure_browser: missing:$missing -- the browser map tests (tests/test_maps.py) will be skipped"
        echo "  and the CJK figure tests need a CJK font; as root run:"
        echo "  apt-get update && apt-get install -y chromium chromium-driver fonts-noto-cjk"
    fi
    if ! have_office; then
        echo "ensure_browser: missing: soffice -- the printed-workbook test (tests/test_workbook.py, PDF page counts)"
        echo "  and the Word report PDF test (tests/test_docx_report.py) will be skipped; as root run:"
        echo "  apt-get update && apt-get install -y --no-install-recommends libreoffice-calc libreoffice-writer"
    fi
fi
exit 0
