#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Drive vmferry-server's web page in headless Chromium (Selenium).

    page.py BASE_URL TOKEN_FILE SPKI_SHA256_B64 PROFILE_DIR

Logs in with a wrong token (refused), then the right one; checks the
images listed, their states and the command to run one locally; presses
"Run on server" on testvm, sees it running on the server, presses
"Stop", sees it idle again; logs out.  Chromium trusts the test server's
self-signed certificate by its public key's hash only
(--ignore-certificate-errors-spki-list).  Exit 0 on success.
"""
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

base, token_file, spki, profile = sys.argv[1:5]
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
    return WebDriverWait(driver, secs, poll_frequency=0.2).until(cond)


def row(name):
    return driver.find_element(By.CSS_SELECTOR, 'tr[data-image="%s"]' % name)


def row_state(name):
    def check(d):
        try:
            return row(name).get_attribute("data-state")
        except Exception:
            return None
    return check


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
    step("logged in; testvm idle, vm2 %r" % row("vm2").find_element(By.CSS_SELECTOR, "td.state").text)
    assert "running locally (" in row("vm2").find_element(By.CSS_SELECTOR, "td.state").text
    cmd = row("testvm").find_element(By.CSS_SELECTOR, "code.command").text
    assert cmd == "vmferry run %s/testvm --local" % base, cmd
    step("command to run it locally: %s" % cmd)
    assert not row("vm2").find_elements(By.CSS_SELECTOR, "button.run"), "vm2 runs locally: no Run button"

    row("testvm").find_element(By.CSS_SELECTOR, "button.run").click()
    wait(lambda d: row_state("testvm")(d) == "remote")
    text = row("testvm").find_element(By.CSS_SELECTOR, "td.state").text
    step("after Run on server: %r" % text)
    assert "running on the server (started by admin@vmferry-server" in text

    row("testvm").find_element(By.CSS_SELECTOR, "button.stop").click()
    step("Stop pressed: %r" % driver.find_element(By.ID, "message").text)
    wait(lambda d: row_state("testvm")(d) == "idle", secs=120)
    version = row("testvm").find_elements(By.TAG_NAME, "td")[1].text
    step("stopped: testvm idle again, version %s" % version)
    assert version == "2", version

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
