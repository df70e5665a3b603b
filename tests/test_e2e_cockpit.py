"""The incident cockpit in a real browser: headless Chromium (Debian ``chromium`` +
``chromium-driver``) driven by Selenium, against the aegis pack's CockpitSensor in a
runtime with st2's API and auth on free ports, and a real supervisord.

The approval path is the ``cockpittest`` fixture pack's workflow (``core.ask`` → the real
``aegis.restart`` of a supervisord program, not a dry run): the remediate workflow's own
approval branch needs a caution-class diagnosis, i.e. the embedding model and a runbook,
which would make this test about the diagnoser. ``aegis.remediate``'s rule is disabled
here so only that workflow runs for an alert.

Screenshots of the incident list and of an incident page are written to
``test-artifacts/cockpit/`` (``AEGIS_TEST_ARTIFACTS`` to change it).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from conftest import FIXTURE_PACKS, REPO, free_port, wait_for

sys.path.insert(0, str(REPO / "packs" / "aegis" / "tests"))
from servers import supervisord  # noqa: E402

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a test extra: pip install -e '.[test]'")
from selenium.common.exceptions import (  # noqa: E402
    ElementNotInteractableException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip("chromium and chromium-driver are not installed: scripts/setup.sh --services", allow_module_level=True)
if supervisord.available():
    pytest.skip(supervisord.available(), allow_module_level=True)

ARTIFACTS = Path(os.environ.get("AEGIS_TEST_ARTIFACTS", REPO / "test-artifacts")) / "cockpit"
SCRIPT = "<script>document.title='pwned';window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">"
LOG_LINE = f"ERROR checkout: request failed body={SCRIPT}"


def alert(n: int, service: str = "checkout") -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": "CheckoutErrors", "service": service, "severity": "warning", "instance": f"checkout-{n}"},
        "annotations": {"summary": f"checkout 5xx above 5% <b>#{n}</b>", "description": f"log: {LOG_LINE}"},
        "startsAt": f"2026-11-30T10:00:{n:02d}.000Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.com:9090/graph", "fingerprint": f"c0c0{n:012x}",
    }  # fmt: skip


def incident_id(a: dict[str, Any]) -> str:
    return "inc-" + hashlib.sha256(f"{a['fingerprint'].lower()}|{a['startsAt']}".encode()).hexdigest()[:16]


class CockpitEnv:
    def __init__(self, tmp_path: Path, make_runtime: Any) -> None:
        from st2lite.api import AuthStore, start_api

        packs = tmp_path / "packs"
        packs.mkdir()
        (packs / "aegis").symlink_to(REPO / "packs" / "aegis")
        (packs / "cockpittest").symlink_to(FIXTURE_PACKS / "cockpittest")
        self.home = tmp_path / "home"
        (self.home / "configs").mkdir(parents=True)
        auth = AuthStore(self.home)
        auth.add_user("alice", "alice-password")  # on the approvers list
        auth.add_user("bob", "bob-password")  # a user, not an approver
        api_key = auth.create_api_key("aegis-cockpit")["key"]
        self.sv = supervisord.Supervisord(str(tmp_path), {"victim": f"{sys.executable} -c 'import time; time.sleep(1e6)'"})
        self.sv.start()
        ports = {name: free_port() for name in ("webhook", "api", "auth", "stream", "knowledge", "cockpit")}
        self.webhook_url = f"http://127.0.0.1:{ports['webhook']}/alertmanager"
        self.url = f"http://127.0.0.1:{ports['cockpit']}"
        config = {
            "mode": "auto",
            "alertmanager": {"host": "127.0.0.1", "port": ports["webhook"], "path": "/alertmanager"},
            "knowledge": {"service_port": ports["knowledge"], "index_dir": str(tmp_path / "index")},
            "chatops": {"approvers": ["alice"]},
            "default_backend": "supervisor",
            "supervisor": {"url": self.sv.url, "username": self.sv.username, "password": self.sv.password},
            "safety": {"cooldown_seconds": 0, "max_actions_per_target_per_hour": 100, "max_actions_per_incident": 5},
            "cockpit": {"host": "127.0.0.1", "port": ports["cockpit"], "st2_api_url": f"http://127.0.0.1:{ports['api']}/v1",
                        "st2_auth_url": f"http://127.0.0.1:{ports['auth']}", "st2_api_key": api_key,
                        "cost_per_minute": 50, "manual_mttr_minutes": 30},
        }  # fmt: skip
        (self.home / "configs" / "aegis.yaml").write_text(yaml.safe_dump(config))
        self.runtime = make_runtime(packs, home=self.home)
        wanted = {"aegis.AlertmanagerWebhookSensor", "aegis.CockpitSensor"}
        for sensor in self.runtime.packs["aegis"].pack.sensors:
            sensor.enabled = sensor.ref in wanted
        for rule in self.runtime.rules:
            if rule.ref == "aegis.remediate_firing_alert":
                rule.enabled = False
                rule.meta["enabled"] = False  # what the rules engine reads when it matches
        self.servers = start_api(self.runtime, self.home, api_listen=("127.0.0.1", ports["api"]),
                                 auth_listen=("127.0.0.1", ports["auth"]), stream_listen=("127.0.0.1", ports["stream"]))  # fmt: skip
        self.runtime.start()
        wait_for(self._serving, timeout=120, what="the cockpit to serve its login page")

    def _serving(self) -> bool:
        try:
            return requests.get(self.url + "/login", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def close(self) -> None:
        self.servers.stop()
        self.sv.stop()

    def post_alert(self, a: dict[str, Any]) -> str:
        notification = {"version": "4", "groupKey": "{}:{alertname=\"CheckoutErrors\"}", "truncatedAlerts": 0, "status": "firing",
                        "receiver": "aegis", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                        "externalURL": "http://alertmanager.example.com:9093", "alerts": [copy.deepcopy(a)]}  # fmt: skip
        response = requests.post(self.webhook_url, json=notification, timeout=10)
        assert response.status_code == 200, response.text
        return incident_id(a)

    def workflow_of(self, inc_id: str) -> dict[str, Any] | None:
        return next((r for r in self.runtime.records.list_executions(limit=500)
                     if r["action"] == "cockpittest.hold_then_restart" and (r["parameters"] or {}).get("incident_id") == inc_id), None)  # fmt: skip

    def wait_inquiry(self, inc_id: str) -> dict[str, Any]:
        def pending() -> dict[str, Any] | None:
            workflow = self.workflow_of(inc_id)
            return workflow and next((i for i in self.runtime.inquiries.list() if i["parent"] == workflow["id"]), None)

        return wait_for(pending, timeout=120, what=f"the inquiry of {inc_id}")

    def wait_workflow(self, inc_id: str) -> dict[str, Any]:
        return wait_for(lambda: (w := self.workflow_of(inc_id)) and w["status"] in ("succeeded", "failed") and w,
                        timeout=120, what=f"the workflow of {inc_id} to end")  # fmt: skip

    def task(self, workflow_id: str, name: str) -> dict[str, Any]:
        return next(r for r in self.runtime.records.list_executions(limit=500) if r["parent"] == workflow_id and r["task_name"] == name)

    def pid(self) -> int:
        return self.sv.wait_running("victim")["pid"]

    def login(self, user: str, password: str) -> requests.Session:
        s = requests.Session()
        r = s.post(self.url + "/login", data={"username": user, "password": password}, headers={"Origin": self.url}, allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"] == "/", (r.status_code, r.headers)
        cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie
        s.headers["Cookie"] = cookie.split(";", 1)[0]
        s.headers["Origin"] = self.url
        s.headers["X-CSRF-Token"] = s.get(self.url + "/api/session").json()["csrf"]
        return s


@pytest.fixture
def cockpit(tmp_path: Path, make_runtime: Any) -> Any:
    env = CockpitEnv(tmp_path, make_runtime)
    yield env
    env.close()


@pytest.fixture
def browser(tmp_path: Path) -> Any:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
                f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def wait(driver: Any, timeout: float = 30) -> WebDriverWait:
    return WebDriverWait(driver, timeout, poll_frequency=0.05)


def explain(driver: Any, what: str) -> str:
    """On a timeout: a screenshot and what the page showed."""
    try:
        shot(driver, "failure.png")
        return f"{what}; page {driver.current_url}: {driver.find_element(By.ID, 'main').text[:1500]!r}"
    except Exception as exc:  # noqa: BLE001
        return f"{what}; (no page: {exc})"


def click(driver: Any, css: str, timeout: float = 30) -> None:
    """Click the element once it is there; the live list may redraw between finding and clicking."""

    def clicked(d: Any) -> bool:
        try:
            d.find_element(By.CSS_SELECTOR, css).click()
            return True
        except (NoSuchElementException, StaleElementReferenceException, ElementNotInteractableException):
            return False

    try:
        wait(driver, timeout).until(clicked)
    except TimeoutException:
        pytest.fail(explain(driver, f"could not click {css}"))


def text_of(driver: Any, css: str, timeout: float = 30, until: Any = bool) -> str:
    """The element's text once ``until(text)`` holds (re-found on every try: pages redraw live)."""

    def read(d: Any) -> str | bool:
        try:
            value = d.find_element(By.CSS_SELECTOR, css).text
        except (NoSuchElementException, StaleElementReferenceException):
            return False
        return value if until(value) else False

    try:
        return wait(driver, timeout).until(read)
    except TimeoutException:
        pytest.fail(explain(driver, f"{css} never showed what was expected"))


def shot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


def browser_login(driver: Any, env: CockpitEnv, user: str, password: str) -> None:
    driver.get(env.url + "/incidents")
    wait(driver).until(ec.url_to_be(env.url + "/login"))  # no session: sent to the login page
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()
    wait(driver).until(ec.text_to_be_present_in_element((By.ID, "user"), user))
    wait(driver).until(ec.text_to_be_present_in_element((By.ID, "live"), "live"))


def approve_in_browser(driver: Any, env: CockpitEnv, inquiry_id: str) -> None:
    click(driver, 'header a[href="/approvals"]')
    click(driver, f'tr[data-inquiry="{inquiry_id}"] button.approve')
    text_of(driver, "#approval-message", until=lambda t: f"{inquiry_id} approved" in t)


def test_cockpit_in_a_browser(cockpit: CockpitEnv, browser: Any) -> None:
    browser_login(browser, cockpit, "alice", "alice-password")
    browser.execute_script("window.__noReload = 'still the same page';")

    # An alert posted to the sensor appears in the list without a reload.
    first = alert(1)
    posted = time.monotonic()
    inc1 = cockpit.post_alert(first)
    wait(browser, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-id="{inc1}"]')))
    appeared = time.monotonic() - posted
    print(f"\nnew alert visible in the list {appeared:.2f} s after the webhook answered")
    assert browser.execute_script("return window.__noReload") == "still the same page", "the list was reloaded"
    row = text_of(browser, f'tr[data-id="{inc1}"]')
    assert "checkout" in row and "CheckoutErrors" in row
    assert "<b>#1</b>" in row  # the summary's markup is shown as text

    # An approval granted with the button lets the workflow proceed: a real restart.
    pid_before = cockpit.pid()
    inquiry = cockpit.wait_inquiry(inc1)
    approve_in_browser(browser, cockpit, inquiry["id"])
    workflow = cockpit.wait_workflow(inc1)
    assert workflow["status"] == "succeeded"
    act = cockpit.task(workflow["id"], "act")
    assert act["result"]["result"]["outcome"] == "done", act["result"]
    assert cockpit.pid() != pid_before, "the victim was restarted"

    # Its page shows the timeline, with the approval and the action.
    cockpit.runtime.store.set(  # the lines the log-pattern sensor keeps for the service (its key and format)
        "aegis.matched_lines.checkout-" + hashlib.sha256(b"checkout").hexdigest()[:12],
        json.dumps([{"at": "2026-11-30T10:00:00Z", "pattern": "error", "line": LOG_LINE}]),
    )
    click(browser, 'header a[href="/incidents"]')
    click(browser, f'tr[data-id="{inc1}"] a.incident-link')
    text_of(browser, '#stages li[data-stage="approval"] .name', until=lambda t: t == "approved")
    acted = text_of(browser, '#stages li[data-stage="acted"]', until=lambda t: "restart victim: done" in t)
    stages = [li.get_attribute("data-stage") for li in browser.find_elements(By.CSS_SELECTOR, "#stages li")]
    assert stages == ["detected", "diagnosed", "approval", "acted", "verified", "outcome"]
    assert "2026-" in acted, acted  # its timestamp
    assert "2026-" in text_of(browser, '#stages li[data-stage="detected"]')
    assert "2026-" in text_of(browser, '#stages li[data-stage="approval"]')
    executions = text_of(browser, "#executions", until=lambda t: "aegis.restart" in t)
    assert "core.ask" in executions and "cockpittest.hold_then_restart" in executions
    text_of(browser, "#timeline", until=lambda t: "approved by alice via the cockpit" in t)

    # A log line containing <script> shows as text and runs nothing.
    text_of(browser, "#logs", until=lambda t: "<script>document.title='pwned';window.__pwned=1</script>" in t)
    assert "<img src=x" in text_of(browser, "#main .card")  # the description, as text
    assert browser.execute_script("return window.__pwned") is None
    assert browser.title == "Aegis cockpit"
    assert not browser.find_elements(By.CSS_SELECTOR, "#main script, #main img[src='x']")
    shot(browser, "incident.png")

    # The mode switch, confirmed, stops actions: the next approved restart is refused.
    click(browser, 'header a[href="/mode"]')
    click(browser, 'button[data-mode="monitor"]')
    assert cockpit.runtime.store.get("aegis.mode") is None, "nothing changes before the confirmation"
    wait(browser).until(ec.presence_of_element_located((By.ID, "mode-reason"))).send_keys("database migration")
    click(browser, "#mode-confirm-button")
    text_of(browser, "#current-mode", until=lambda t: t == "monitor")
    last = text_of(browser, "#mode-last-change")
    assert "alice" in last and "database migration" in last and "cockpit" in last, last
    assert cockpit.runtime.store.get("aegis.mode") == "monitor"

    inc2 = cockpit.post_alert(alert(2))
    pid_before = cockpit.pid()
    inquiry = cockpit.wait_inquiry(inc2)
    approve_in_browser(browser, cockpit, inquiry["id"])
    workflow = cockpit.wait_workflow(inc2)
    act = cockpit.task(workflow["id"], "act")["result"]["result"]
    assert act["outcome"] == "refused" and "monitor" in act["reason"], act
    assert cockpit.pid() == pid_before, "monitor mode: the victim was not touched"

    # The list with both incidents and the filters.
    click(browser, 'header a[href="/incidents"]')
    wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-id="{inc2}"]')))
    wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-id="{inc1}"]')))
    shot(browser, "incidents.png")

    # Impact draws its charts locally.
    click(browser, 'header a[href="/impact"]')
    chart = wait(browser).until(ec.presence_of_element_located((By.ID, "mttr-chart")))
    wait(browser).until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", chart))
    shot(browser, "impact.png")


def test_cockpit_refuses_without_session_and_checks_every_change(cockpit: CockpitEnv) -> None:
    url = cockpit.url
    # No session: pages redirect to the login, everything else is 401.
    for path in ("/api/incidents", "/api/approvals", "/api/mode", "/api/impact", "/events", "/static/app.js", "/api/knowledge?q=x"):
        r = requests.get(url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 401, (path, r.status_code)
    for path in ("/", "/incidents", "/mode"):
        r = requests.get(url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 303 and r.headers["Location"] == "/login", path
    r = requests.post(url + "/api/mode", json={"mode": "monitor", "confirm": True}, headers={"Origin": url}, timeout=10)
    assert r.status_code == 401
    # A forged cookie is no session.
    r = requests.get(url + "/api/incidents", headers={"Cookie": "aegis_cockpit=forged"}, timeout=10)
    assert r.status_code == 401
    # Every answer carries the headers.
    login_page = requests.get(url + "/login", timeout=10)
    csp = login_page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert login_page.headers["X-Content-Type-Options"] == "nosniff"
    # Wrong password: no session.
    r = requests.post(url + "/login", data={"username": "alice", "password": "nope"}, headers={"Origin": url}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"].startswith("/login?error") and "Set-Cookie" not in r.headers

    alice = cockpit.login("alice", "alice-password")
    assert alice.get(url + "/api/incidents").status_code == 200
    # CSRF: a change without the session's token, or from another origin, is refused.
    r = alice.post(url + "/api/mode", json={"mode": "monitor", "confirm": True}, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = alice.post(url + "/api/mode", json={"mode": "monitor", "confirm": True}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403, r.text
    r = alice.post(url + "/api/mode", json={"mode": "monitor"})
    assert r.status_code == 400 and "confirmed" in r.json()["error"]
    assert cockpit.runtime.store.get("aegis.mode") is None, "no refused request changed the mode"

    # Bob may log in and look, but not approve (the ChatOps approvers list); the refusal is recorded.
    inc = cockpit.post_alert(alert(3))
    inquiry = cockpit.wait_inquiry(inc)
    bob = cockpit.login("bob", "bob-password")
    r = bob.post(url + f"/api/approvals/{inquiry['id']}", json={"decision": "approve"})
    assert r.status_code == 403 and "approvers" in r.json()["error"]
    r = bob.post(url + "/api/mode", json={"mode": "monitor", "confirm": True})
    assert r.status_code == 403, r.text
    assert cockpit.runtime.store.get("aegis.mode") is None
    assert any(i["id"] == inquiry["id"] and i["status"] == "pending" for i in cockpit.runtime.inquiries.list())
    timeline = alice.get(url + f"/api/incidents/{inc}").json()["timeline"]
    assert any("approve refused: bob is not an approver" in e["event"] for e in timeline)
    # A runbook, as Markdown the page renders safely (text nodes).
    runbook = alice.get(url + "/api/runbooks/backup-failure")
    assert runbook.status_code == 200 and runbook.json()["markdown"].startswith("---"), runbook.text
    assert alice.get(url + "/api/runbooks/..%2F..%2Fetc%2Fpasswd").status_code == 404
    # Logging out ends the session.
    assert alice.post(url + "/logout", data=b"").status_code == 200
    assert alice.get(url + "/api/incidents").status_code == 401
    assert urlsplit(url).hostname == "127.0.0.1"
