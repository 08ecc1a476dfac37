"""The web view in a real browser (headless Chromium via selenium) against the real controller.

With the 3-host lab: the page draws 3 hosts with both channels up and 2 created tunnels each
(counted per host; a picked host's drawn), both tenants and, tenant by tenant, exactly the VMs
that talked (MAC, IP, host), the flood set and the suppression counters; it saves a screenshot
(docs/webview.png, the README's picture, when OVERLAY_WEBVIEW_SCREENSHOT names it; a test run
leaves the work tree as it was), then follows a new tenant and a dropped OVSDB channel without
a reload, from the event stream: while nothing changes it reads nothing. With a token and
closed reads: the page asks for the token, refuses a wrong one, then shows the data (no host
yet: how a host joins).
"""

import json
import os
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from lab.controller import Controller
from lab.overlay import TENANTS, announce, reachable_pairs

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Where to save the page: set to docs/webview.png to refresh the picture.
SCREENSHOT_ENV = "OVERLAY_WEBVIEW_SCREENSHOT"
TOKEN = "webview-e2e-Token-71c3"
DEADLINE_S = 20.0


@pytest.fixture
def browser():
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: run ./setup.sh (it installs Debian's chromium and chromium-driver)")
    profile = tempfile.mkdtemp(prefix="overlay-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1440,1120", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver, what, condition, timeout=DEADLINE_S):
    """Poll the DOM until condition(driver) is truthy; fail saying what was awaited. The page redraws
    when an event arrives: an element read as it is replaced is read again at the next poll."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: condition(d))
    except Exception as e:  # selenium's TimeoutException says nothing useful on its own
        status = driver.find_element(By.ID, "status").text
        raise AssertionError(f"page never showed {what} within {timeout:g} s (status: {status!r})") from e


def attrs(driver, css, *names):
    """[(attr, ...)] of every element matching css, read in one round trip."""
    return [tuple(x) for x in driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => arguments[1].map(n => e.getAttribute(n)))",
        css, list(names))]


def rows(driver, css):
    return [tuple(x) for x in driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(r => [...r.cells].map(c => c.textContent))", css)]


def open_page(driver, ctl: Controller, fragment: str = "") -> None:
    """The page, logged in: reads need the token the controller made (the default). The tab holds
    it as the login form leaves it, put there before the page's own script runs, so no fetch is
    ever refused."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
        "source": f"sessionStorage.setItem('overlay-api-token', {json.dumps(ctl.api.token)})"})
    driver.get(ctl.api.base + "/" + fragment)


def click(driver, css: str) -> None:
    """Click the element css names, found again if a redraw (an event) replaced it meanwhile."""
    def clicked(d) -> bool:
        d.find_element(By.CSS_SELECTOR, css).click()
        return True
    wait(driver, f"{css} clicked", clicked)


def no_console_errors(driver):
    """A CSP violation or a script error shows up here."""
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def counters_shown(driver) -> dict[str, int]:
    """The counters box: each named counter, and the packet-ins and endpoints learned under it."""
    values = {key: int(value.replace(",", "")) for key, value in driver.execute_script(
        "return [...document.querySelectorAll('#counters [data-counter]')]"
        ".map(e => [e.dataset.counter, e.querySelector('.value').textContent])")}
    note = driver.find_element(By.CSS_SELECTOR, "#counters p.muted").text.replace(",", "")
    m = re.search(r"(\d+) packet-ins · (\d+) endpoints learned", note)
    return values | ({"packet-ins": int(m.group(1)), "learned": int(m.group(2))} if m else {})


def counters_expected(c: dict) -> dict[str, int]:
    """What the page must show for GET /v1/counters."""
    return {"arp": c.get("arp_proxied", 0) + c.get("arp_local", 0), "nd": c.get("nd_proxied", 0) + c.get("nd_local", 0),
            "floods": c.get("floods_sent", 0), "unknown": c.get("floods_unknown_ip", 0),
            "packet-ins": c.get("packet_in", 0), "learned": c.get("endpoints_learned", 0)}


def test_the_page_shows_the_lab_live(make_overlay, browser, tmp_path):
    ov = make_overlay()
    vms = {t: ov.tenant_vms(t) for t in TENANTS}
    for tenant, members in vms.items():  # the VMs talk, so the controller learns them
        announce(members)
        assert len(reachable_pairs(members)) == 6, tenant
    open_page(browser, ov.ctl)

    wait(browser, "3 hosts with OVSDB and OpenFlow up", lambda d: sorted(
        attrs(d, "#hosts g.host", "data-host", "data-ovsdb", "data-openflow")) == [
        (h.name, "up", "up") for h in ov.hosts])
    names = [h.name for h in ov.hosts]
    wait(browser, "2 created tunnels on each host", lambda d: sorted(
        attrs(d, "#hosts g.host", "data-host", "data-created", "data-adopted", "data-missing")) == [
        (n, "2", "0", "0") for n in names])
    assert "6 of 6 tunnels usable" in browser.find_element(By.ID, "tunnel-type").text
    for picked in names:  # a host's tunnels are drawn when it is picked (per pair: a million at 1,000 hosts)
        click(browser, f'#hosts g.host[data-host="{picked}"]')
        want = sorted((picked, b, "created") for b in names if b != picked)
        wait(browser, f"{picked}'s 2 created tunnels", lambda d, want=want: sorted(
            attrs(d, "#tunnels line.tunnel", "data-host", "data-peer", "data-state")) == want)
    wait(browser, "both tenants",
         lambda d: [a for (a,) in attrs(d, "#tenants .tenant", "data-tenant")] == sorted(TENANTS))
    assert not browser.find_element(By.ID, "no-hosts").is_displayed()  # hosts: no joining hint

    for tenant in sorted(TENANTS, reverse=True):  # end on blue: the screenshot's tenant
        click(browser, f'#tenants .tenant[data-tenant="{tenant}"]')
        want = sorted((vm.mac, vm.ip, vm.host.name) for vm in vms[tenant])
        wait(browser, f"{tenant}'s endpoints {want}", lambda d, want=want: sorted(
            (mac, ips, host) for mac, ips, host, *_ in rows(d, "#endpoints tbody tr:not(.empty)")) == want)
        selected = attrs(browser, "#tenants .tenant.selected", "data-tenant")
        assert selected == [(tenant,)]
        # every host has a VM of each tenant: each floods to both others, drawn as one arrow per copy
        wait(browser, f"{tenant}'s flood set", lambda d: sorted(rows(d, "#flood tbody tr")) == [
            (h, ", ".join(n for n in names if n != h)) for h in names])
        assert len(attrs(browser, "#flood-arrows line", "data-host")) == 6
        assert sorted(a for (a,) in attrs(browser, "#hosts g.host.member", "data-host")) == names

    # Live: the page shows every counter it names as the API has it (the controller's own figures,
    # counted from flow stats, as they arrive); the ARP requests the pings sent were answered in
    # the switches, and no IPv6 ran.
    last: dict[str, dict] = {}

    def counters_agree(d) -> dict | bool:
        last["page"], last["api"] = counters_shown(d), counters_expected(ov.ctl.api.get("/v1/counters"))
        return last["page"] == last["api"] and last["page"]
    try:
        shown = wait(browser, "the counters as the API has them", counters_agree)
    except AssertionError as e:
        raise AssertionError(f"{e}: the page {last.get('page')}, the API {last.get('api')}") from e
    print(f"\nthe page's counters, equal to the API's: {shown}")
    assert shown["arp"] > 0 and shown["nd"] == 0 and shown["packet-ins"] > 0, shown
    no_console_errors(browser)

    # the whole page in one picture: grow the window to the document's height
    height, chrome = browser.execute_script(
        "return [Math.ceil(document.body.getBoundingClientRect().bottom), window.outerHeight - window.innerHeight]")
    browser.set_window_size(1440, height + chrome)
    screenshot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "webview.png")
    assert browser.save_screenshot(str(screenshot))

    # Quiet: no event, no read (it polled /v1/topology every 2 s).
    wait(browser, "the event stream followed", lambda d: "following events" in d.find_element(By.ID, "status").text)
    time.sleep(1.5)  # what was on its way (a counters event) is read
    reads = ov.ctl.log_path.read_text().count("GET /v1/topology HTTP")
    time.sleep(5)
    assert ov.ctl.log_path.read_text().count("GET /v1/topology HTTP") - reads <= 1

    # Live, without a reload: a new tenant appears, and a host whose OVSDB channel drops turns red
    # on that channel only.
    ov.ctl.api.post("/v1/tenants", {"name": "green", "vni": 5003, "vlan": 30})
    wait(browser, "the new tenant", lambda d: [a for (a,) in attrs(d, "#tenants .tenant", "data-tenant")] == [
        "blue", "green", "red"])
    ov.hosts[2].vsctl("del-manager")
    wait(browser, "h3's OVSDB channel down", lambda d: sorted(
        attrs(d, "#hosts g.host", "data-host", "data-ovsdb", "data-openflow")) == [
        (h.name, "down" if h is ov.hosts[2] else "up", "up") for h in ov.hosts])
    no_console_errors(browser)


def test_with_a_token_the_page_asks_for_it(browser, tmp_path):
    token = tmp_path / "api.token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    ctl = Controller("127.0.0.1", workdir=str(tmp_path), extra={"overlay": {"api_token_file": token}})
    ctl.start()
    try:
        browser.get(ctl.api.base + "/")
        login = browser.find_element(By.ID, "login")
        wait(browser, "the token field", lambda d: login.is_displayed())
        field = browser.find_element(By.ID, "token")
        field.send_keys("not-the-token\n")
        wait(browser, "the refusal", lambda d: "refused" in d.find_element(By.ID, "login-error").text)
        field.send_keys(TOKEN + "\n")
        wait(browser, "the (empty) topology", lambda d: not login.is_displayed() and "0 hosts · 0 of 0 tunnels" in
             d.find_element(By.ID, "tunnel-type").text)
        # no host yet: not an empty box, but how a host joins this controller (#22.11)
        hint = browser.find_element(By.ID, "no-hosts")
        assert hint.is_displayed() and not browser.find_element(By.ID, "topology").is_displayed()
        assert "set-manager tcp:127.0.0.1:6640" in hint.text and "set-controller br1 tcp:127.0.0.1:6653" in hint.text
        assert browser.execute_script("return sessionStorage.getItem('overlay-api-token')") == TOKEN
        assert browser.execute_script("return localStorage.length") == 0  # nothing outlives the tab
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert all("401" in e["message"] for e in errors), errors  # only the refused fetches
    except WebDriverException:
        print(ctl.log_tail())
        raise
    finally:
        ctl.stop(signal.SIGKILL)
    log = ctl.log_path.read_text()
    assert '"GET /v1/topology HTTP/1.1" 200' in log and TOKEN not in log  # used, and never logged
