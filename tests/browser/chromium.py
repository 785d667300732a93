"""Browser sign-in in a real browser: headless Chromium (Debian's chromium and
chromium-driver, driven by selenium) against tokengate and the real
oidc-provider with its interactive login and consent pages.

Run by tests/browser.rs with: APP (the app's origin through tokengate),
OP (the provider's issuer), ADMIN (tokengate's admin origin), SHOTS (a
directory for a screenshot of each step). Exits non-zero, saying which step
failed, when the browser does not see what a user must see.
"""

import base64
import json
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.common.by import By

APP, OP, ADMIN, SHOTS = (os.environ[k] for k in ("APP", "OP", "ADMIN", "SHOTS"))
DEADLINE = 30


def metric(result):
    text = urllib.request.urlopen(f"{ADMIN}/metrics", timeout=5).read().decode()
    series = f'tokengate_browser_signins_total{{result="{result}"}}'
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[1])
    return 0.0


def wait_for(what, condition):
    deadline = time.time() + DEADLINE
    while time.time() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def main():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,700"):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    step = [0]

    def shot(name):
        step[0] += 1
        driver.save_screenshot(os.path.join(SHOTS, f"{step[0]:02d}-{name}.png"))

    def at(prefix):
        return driver.current_url.startswith(prefix)

    def app_json():
        return json.loads(driver.find_element(By.TAG_NAME, "body").text)

    def sign_in(login):
        wait_for("the provider's login page", lambda: at(OP) and driver.find_element(By.NAME, "login"))
        shot("provider-login")
        driver.find_element(By.NAME, "login").send_keys(login)
        driver.find_element(By.NAME, "password").send_keys("any password")
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_for("the consent page or the app", lambda: at(APP) or driver.find_element(By.NAME, "prompt"))
        if at(OP):
            shot("provider-consent")
            driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    try:
        # 1. Sign in, and land on the page first asked for.
        driver.get(f"{APP}/orders?item=1")
        sign_in("alice")
        wait_for("the app's page", lambda: at(f"{APP}/orders?item=1") and app_json())
        page = app_json()
        shot("signed-in-app-page")
        assert page["path"] == "/orders" and page["query"] == "item=1", page
        assert page["headers"].get("x-auth-subject") == "alice", page["headers"]
        assert page["headers"].get("x-auth-email") == "alice@example.test", page["headers"]
        assert "tokengate-" not in page["headers"].get("cookie", ""), page["headers"]
        # The cookies are not readable by scripts.
        assert "tokengate" not in driver.execute_script("return document.cookie"), "a script read our cookies"
        signed_in = metric("signed_in")

        # 2. The access token expires (2 s): the next navigation is served
        # with one rotation, no provider. (WebDriver can read the HttpOnly
        # cookie; the page's scripts cannot, as checked above.)
        access = driver.get_cookie("tokengate-access")["value"]
        payload = access.split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]
        wait_for("the access token to expire", lambda: time.time() >= exp)
        refreshed = metric("refreshed")
        driver.get(f"{APP}/orders")
        wait_for("the app's page after expiry", lambda: at(f"{APP}/orders") and app_json())
        shot("refreshed-in-line")
        assert app_json()["headers"].get("x-auth-subject") == "alice"
        assert metric("refreshed") == refreshed + 1, "not exactly one rotation"
        assert metric("signed_in") == signed_in, "signed in again instead of refreshing"

        # 3. Sign out: the session ends, the provider signs out, and the
        # next navigation goes to the provider's login page.
        driver.get(f"{APP}/.tokengate/logout")
        wait_for("the provider's sign-out page", lambda: at(OP))
        shot("provider-sign-out")
        buttons = driver.find_elements(By.CSS_SELECTOR, "button[autofocus], button[value=yes], button")
        if buttons and at(OP):
            buttons[0].click()
        wait_for("back at the app, signed out", lambda: at(APP) or driver.find_element(By.NAME, "login"))
        driver.get(f"{APP}/orders")
        wait_for("the provider's login page after sign-out", lambda: at(OP) and driver.find_element(By.NAME, "login"))
        shot("signed-out-sent-to-provider")

        # 4. Sign in again, then the provider logs the user out
        # (back-channel): the next navigation goes to the provider (a new
        # sign-in is counted; the provider's own session may skip the form).
        sign_in("alice")
        wait_for("the app's page", lambda: at(f"{APP}/orders") and app_json())
        shot("signed-in-again")
        before = metric("signed_in")
        request = urllib.request.Request(
            f"{OP}/test/backchannel-logout?sub=alice&sid=op-session&client=web", method="POST")
        assert urllib.request.urlopen(request, timeout=10).status == 204
        driver.get(f"{APP}/orders")
        wait_for("the app's page after the provider's logout",
                 lambda: (at(OP) and driver.find_element(By.NAME, "login")) or (at(f"{APP}/orders") and app_json()))
        if at(OP):
            shot("after-backchannel-provider-login")
            sign_in("alice")
            wait_for("the app's page", lambda: at(f"{APP}/orders") and app_json())
        shot("after-backchannel-signed-in-anew")
        assert metric("signed_in") == before + 1, "the back-channel logout left the browser signed in"
    except Exception:
        shot("failure")
        raise
    finally:
        driver.quit()
    print("chromium: every step as a user must see it")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"chromium: {e}", file=sys.stderr)
        sys.exit(1)
