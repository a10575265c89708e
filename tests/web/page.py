#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Drive vmferry-server's web page in headless Chromium (Selenium).

    page.py BASE_URL TOKEN_FILE SPKI_SHA256_B64 PROFILE_DIR

Logs in with a wrong token (refused), then the right one; checks the
images listed, their states and the command to run one locally; presses
"Run on server" on blank (a blank disk: QEMU's BIOS stays up until
stopped), follows the VM states the page shows (data-vm of its row,
read every 50 ms: starting -> running), presses "Display" (noVNC in the
page, on a ticket): the canvas must get the VM's size and pixels that
are not black; presses "Stop" (running -> stopping [-> saving] ->
stopped, "disk unchanged"), sees it idle again; logs out.  Chromium trusts the test server's
self-signed certificate by its public key's hash only
(--ignore-certificate-errors-spki-list).  Exit 0 on success.
"""
import os
import re
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import (NoSuchElementException,
                                        StaleElementReferenceException)
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

base, token_file, spki, profile = sys.argv[1:5]
RUN = "blank"  # the image run on the server: a blank disk stays up
token = open(token_file).read().strip()

opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
          "--disable-dev-shm-usage", "--user-data-dir=" + profile,
          "--ignore-certificate-errors-spki-list=" + spki):
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def step(msg):
    print("page: " + msg, flush=True)


def wait(cond, secs=30):
    # The page redraws its rows as it polls: an element found a moment
    # ago may be gone (stale); look again.
    return WebDriverWait(driver, secs, poll_frequency=0.2,
                         ignored_exceptions=(NoSuchElementException,
                                             StaleElementReferenceException)).until(cond)


def in_row(name, fn):
    """fn(row element), the row found afresh if the page redrew it."""
    return wait(lambda d: (fn(row(name)),))[0]


def click_in_row(name, css):
    """Click the element css in name's row, found afresh if the page
    redrew the row between finding and clicking."""
    def go(d):
        row(name).find_element(By.CSS_SELECTOR, css).click()
        return True
    wait(go)


def row(name):
    return driver.find_element(By.CSS_SELECTOR, 'tr[data-image="%s"]' % name)


def row_state(name):
    def check(d):
        try:
            return row(name).get_attribute("data-state")
        except Exception:
            return None
    return check


def watch_vm(name, until, secs=180):
    """The VM states the page shows for name (its row's data-vm), each
    change once, read every 50 ms until it shows until."""
    seen = []
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        st = driver.execute_script(
            "const r = document.querySelector('tr[data-image=\"' + "
            "arguments[0] + '\"]'); return r ? r.dataset.vm : null;", name)
        if st and (not seen or seen[-1] != st):
            seen.append(st)
        if st == until:
            return seen
        if st == "failed":
            raise AssertionError("the VM failed: %r" % row(name).text)
        time.sleep(0.05)
    raise AssertionError("no %s after %s s: %r" % (until, secs, seen))


def canvas():
    """The display's canvas: [width, height, pixels not black], or
    None."""
    return driver.execute_script("""
        const c = document.querySelector('#screen canvas');
        if (!c || !c.width || !c.height)
            return null;
        const d = c.getContext('2d').getImageData(0, 0, c.width,
                                                  c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4)
            if (d[i] || d[i + 1] || d[i + 2])
                n++;
        return [c.width, c.height, n];""")


def display_check():
    """Display on RUN: noVNC's canvas gets the VM's size (as a real RFB
    client reads it through `vmferry vnc`: $RFB_SIZE_CMD) and pixels
    that are not all black."""
    if not os.environ.get("RFB_SIZE_CMD"):
        step("no RFB_SIZE_CMD: display not checked")
        return
    click_in_row(RUN, "button.display")
    wait(lambda d: d.find_element(By.ID, "display").get_attribute("data-state") == "connected",
         secs=60)
    step("Display pressed: noVNC connected (%r)" % driver.find_element(By.ID, "message").text)
    got = [None]

    def drawn(d):
        got[0] = canvas()
        return got[0] and got[0][2] > 0
    try:
        wait(drawn, secs=90)
    except Exception:
        raise AssertionError("no pixels on the display's canvas: %r" % got[0])
    w, h, n = got[0]
    out = subprocess.run(os.environ["RFB_SIZE_CMD"], shell=True, capture_output=True,
                         text=True, timeout=120).stdout
    step("canvas %dx%d, %d of %d pixels not black; RFB client: %s"
         % (w, h, n, w * h, out.strip()))
    m = re.search(r"^RFB OK (\d+)x(\d+) ", out, re.M)
    assert m, out
    # The guest may change mode between the two readings: read again.
    w, h, n = canvas()
    assert (w, h) == (int(m.group(1)), int(m.group(2))), (w, h, out)
    assert 0 < n <= w * h, n
    shot = driver.execute_script(
        "return document.querySelector('#screen canvas').toDataURL('image/png');")
    black = driver.execute_script("""
        const c = document.createElement('canvas');
        c.width = arguments[0]; c.height = arguments[1];
        const x = c.getContext('2d'); x.fillStyle = '#000';
        x.fillRect(0, 0, c.width, c.height);
        return c.toDataURL('image/png');""", w, h)
    assert shot != black, "the display is an all-black canvas"
    step("the display is not an all-black %dx%d canvas" % (w, h))
    driver.find_element(By.ID, "display-close").click()
    wait(lambda d: not d.find_element(By.ID, "display").is_displayed())


def login(tok):
    field = wait(EC.visibility_of_element_located((By.ID, "token")))
    field.clear()
    field.send_keys(tok)
    driver.find_element(By.ID, "login-button").click()


try:
    driver.get(base + "/")
    wait(EC.url_to_be(base + "/ui/"))
    step("/ redirects to /ui/; title %r" % driver.title)
    assert driver.title == "vmferry"

    login("vmf_not-a-token")
    wait(EC.text_to_be_present_in_element((By.ID, "message"), "refused the token"))
    assert driver.find_element(By.ID, "login").is_displayed()
    step("a wrong token is refused: %r" % driver.find_element(By.ID, "message").text)

    login(token)
    wait(EC.visibility_of_element_located((By.ID, "images")))
    wait(lambda d: row_state("testvm")(d) == "idle" and row_state("vm2")(d) == "local")
    step("logged in; testvm idle, vm2 %r" % in_row("vm2", lambda r: r.find_element(By.CSS_SELECTOR, "td.state").text))
    assert "running locally (" in in_row("vm2", lambda r: r.find_element(By.CSS_SELECTOR, "td.state").text)
    cmd = in_row("testvm", lambda r: r.find_element(By.CSS_SELECTOR, "code.command").text)
    assert cmd == "vmferry run %s/testvm --local" % base, cmd
    step("command to run it locally: %s" % cmd)
    assert not in_row("vm2", lambda r: r.find_elements(By.CSS_SELECTOR, "button.run")), "vm2 runs locally: no Run button"

    click_in_row(RUN, "button.run")
    seen = watch_vm(RUN, "running")
    step("after Run on server, the VM's states: %s" % " -> ".join(seen))
    wait(lambda d: row_state(RUN)(d) == "remote")
    text = in_row(RUN, lambda r: r.find_element(By.CSS_SELECTOR, "td.state").text)
    step("after Run on server: %r" % text)
    assert "running on the server (started by admin@vmferry-server" in text
    text = in_row(RUN, lambda r: r.find_element(By.CSS_SELECTOR, "td.vm").text)
    assert text == "running (from version 1)", text
    display_check()

    click_in_row(RUN, "button.stop")
    step("Stop pressed: %r" % driver.find_element(By.ID, "message").text)
    seen = watch_vm(RUN, "stopped")
    step("after Stop, the VM's states: %s" % " -> ".join(seen))
    assert seen[0] in ("running", "stopping"), seen
    assert "stopping" in seen, seen
    wait(lambda d: row_state(RUN)(d) == "idle", secs=120)
    version = in_row(RUN, lambda r: r.find_elements(By.TAG_NAME, "td")[1].text)
    step("stopped: %s idle again, version %s" % (RUN, version))
    assert version == "1", version
    text = in_row(RUN, lambda r: r.find_element(By.CSS_SELECTOR, "td.vm").text)
    step("its VM: %r" % text)
    assert text == "stopped: disk unchanged, no new version (still 1)", text
    assert not in_row(RUN, lambda r: r.find_elements(By.CSS_SELECTOR, "button.stop"))
    assert not in_row(RUN, lambda r: r.find_elements(By.CSS_SELECTOR, "button.display"))

    driver.find_element(By.ID, "logout").click()
    wait(EC.visibility_of_element_located((By.ID, "login")))
    assert not driver.find_element(By.ID, "list").is_displayed()
    assert driver.execute_script("return sessionStorage.getItem('vmferry-token')") is None
    step("logged out: the token is gone from the tab")
except Exception as e:
    step("FAILED: %r" % e)
    try:
        step("message: %r" % driver.find_element(By.ID, "message").text)
        print(driver.page_source[:3000])
    except Exception:
        pass
    sys.exit(1)
finally:
    driver.quit()
