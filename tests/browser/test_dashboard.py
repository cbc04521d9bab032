"""The dashboard (/__admin/ui/) in headless Chromium: what an integrator sees and does."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.browser.conftest import Dashboard
from tests.conftest import AFTERPAY_HEADERS

REFUND = "/v2/payments/100101785223/refund"
BAD_SCENARIO = """name: broken
afterpay:
  payments:
    - id: "1"
      merchantId: "nobody"
      amount: "ten"
faults:
  - name: f
    match: {provider: afterpay}
    delay: "soon"
"""
FAULT_SCENARIO = """name: outage
faults:
  - name: afterpay-outage
    match: {provider: afterpay, method: POST, path: "/v2/payments/100101785223/refund"}
    times: 2
    respond: {status: 503, error: service_unavailable}
"""


def refund(board: Dashboard, session: str, n: int, amount: str = "10.00") -> Any:
    return board.http.post(f"/sessions/{session}{REFUND}", headers=AFTERPAY_HEADERS, json={
        "requestId": f"req-{n}", "merchantReference": f"refund-{n}",
        "amount": {"amount": amount, "currency": "AUD"}})


def account_row(board: Dashboard, order_id: str) -> Any:
    return board.css(f'tr[data-account="afterpay:{order_id}"]')


def test_the_home_page_lists_every_session_with_its_counts(dashboard: Dashboard) -> None:
    assert refund(dashboard, "shop-a", 1).status_code == 201
    dashboard.http.get("/sessions/shop-b/__admin/clock")
    dashboard.open("/__admin/ui/")
    names = [row.get_attribute("data-session-row") for row in dashboard.all("#sessions tbody tr")]
    assert names == ["default", "shop-a", "shop-b"]
    cells = [c.text for c in dashboard.all('tr[data-session-row="shop-a"] td')]
    last_used, payments, orders, refunds, entries = cells
    assert last_used.endswith("ago")
    # the default world: 9 payments, 8 orders, 3 refunds seeded, plus the one just made
    assert (payments, orders, refunds, entries) == ("9", "8", "4", "1")
    stamp = dashboard.css('tr[data-session-row="shop-a"] time').get_attribute("datetime")
    session = dashboard.app.world.session("shop-a")
    assert stamp == session.last_used.strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{session.last_used.microsecond // 1000:03d}Z"
    dashboard.screenshot("dashboard-sessions")
    dashboard.css('tr[data-session-row="shop-a"] a').click()
    dashboard.wait(lambda d: d.title.startswith("Session shop-a"))
    assert dashboard.driver.current_url == f"{dashboard.url}/sessions/shop-a/__admin/ui/session"


def test_a_refund_appears_live(dashboard: Dashboard) -> None:
    dashboard.open("/sessions/live-1/__admin/ui/session")
    dashboard.live()
    assert account_row(dashboard, "100101785223").find_element(
        "css selector", '[data-field="left"]').text == "120.00"
    answer = refund(dashboard, "live-1", 1, "25.00")
    assert answer.status_code == 201
    refund_id = answer.json()["refundId"]
    row = dashboard.wait(lambda d: d.find_element("css selector", "#journal-rows tr"))
    cells = [c.text for c in row.find_elements("css selector", "td")]
    assert cells[2:6] == ["POST", REFUND, "createRefund", "201"]
    # the payment's refunds and amounts follow, without a reload
    dashboard.wait(lambda d: d.find_elements("css selector", f'li[data-refund="{refund_id}"]'))
    payment = account_row(dashboard, "100101785223")
    assert payment.find_element("css selector", '[data-field="refunded"]').text == "25.00"
    assert payment.find_element("css selector", '[data-field="left"]').text == "95.00"
    assert dashboard.css("#journal-total").text == "1"
    # another session's requests stay out of this view
    assert refund(dashboard, "live-2", 2).status_code == 201
    assert refund(dashboard, "live-1", 3).status_code == 201
    dashboard.wait(lambda d: len(d.find_elements("css selector", "#journal-rows tr")) == 2)
    dashboard.screenshot("dashboard-session", whole_page=True)


def test_an_entry_opens_request_and_answer_with_secrets_redacted(dashboard: Dashboard) -> None:
    from selenium.webdriver.common.keys import Keys

    assert refund(dashboard, "entry", 1).status_code == 201
    dashboard.open("/sessions/entry/__admin/ui/session")
    dashboard.live()
    link = dashboard.css("#journal-rows a.entry-link")
    link.send_keys(Keys.ENTER)  # the keyboard opens it as a click would
    detail = dashboard.wait(lambda d: d.find_element("css selector", "#entry-panel #entry-detail"))
    assert dashboard.driver.switch_to.active_element == detail
    text = detail.text
    assert f"POST {REFUND}" in text
    assert "authorization [REDACTED]" in text and "sandbox-secret-key" not in text
    request_body = detail.find_element("css selector", '[data-part="request-body"]').text
    assert request_body.startswith('{\n  "requestId": "req-1"')  # pretty-printed
    response_body = detail.find_element("css selector", '[data-part="response-body"]').text
    assert '\n  "refundId": ' in response_body
    assert "Answer: 201" in text
    dashboard.screenshot("dashboard-entry")
    detail.send_keys(Keys.ESCAPE)
    dashboard.wait(lambda d: not d.find_elements("css selector", "#entry-detail"))
    assert dashboard.driver.switch_to.active_element == dashboard.css("#journal-rows a.entry-link")


def test_an_entry_has_a_page_of_its_own(dashboard: Dashboard) -> None:
    assert refund(dashboard, "entry", 1).status_code == 201
    dashboard.open("/sessions/entry/__admin/ui/requests/1")
    assert "Answer: 201" in dashboard.css("#entry-detail").text
    dashboard.css("main p a").click()
    dashboard.wait(lambda d: d.title.startswith("Session entry"))


def test_the_clock_moves_from_the_page(dashboard: Dashboard) -> None:
    dashboard.open("/sessions/clock/__admin/ui/session")
    dashboard.live()
    field = dashboard.css("#freeze-at")
    field.clear()
    field.send_keys("2027-01-01T00:00:00Z")
    dashboard.css("#freeze-form button").click()
    dashboard.wait(lambda d: d.find_element("id", "clock-now").text == "2027-01-01T00:00:00.000Z")
    assert dashboard.css("#clock-mode").text == "frozen"
    assert dashboard.http.get("/sessions/clock/__admin/clock").json()["now"] == \
        "2027-01-01T00:00:00.000Z"
    amount = dashboard.css("#advance-by")
    amount.clear()
    amount.send_keys("121")
    dashboard.css("#advance-form button").click()
    dashboard.wait(lambda d: d.find_element("id", "clock-now").text == "2027-05-02T00:00:00.000Z")
    # past the 120-day rule now: the refund of a payment created at the old "now" is refused
    dashboard.css("#real-time").click()
    dashboard.wait(lambda d: d.find_element("id", "clock-mode").text == "running")
    assert dashboard.http.get("/sessions/clock/__admin/clock").json()["frozen"] is False
    # the default session's clock never moved
    assert dashboard.http.get("/__admin/clock").json()["offsetSeconds"] == 0


def test_a_bad_clock_value_is_shown_not_thrown(dashboard: Dashboard) -> None:
    dashboard.expect_refusal("/sessions/clock/__admin/clock", 400)
    dashboard.open("/sessions/clock/__admin/ui/session")
    dashboard.live()
    field = dashboard.css("#freeze-at")
    field.clear()
    field.send_keys("next tuesday")
    dashboard.css("#freeze-form button").click()
    error = dashboard.wait(lambda d: d.find_element("id", "clock-error").text)
    # the admin API's own message, word for word
    answer = dashboard.http.put("/sessions/clock/__admin/clock", json={"now": "next tuesday"})
    assert answer.status_code == 400
    assert error == answer.json()["message"]
    assert dashboard.css("#clock-mode").text == "running"


def test_a_bad_scenario_shows_its_problem_list(dashboard: Dashboard) -> None:
    dashboard.expect_refusal("/sessions/scen/__admin/scenarios", 400)
    dashboard.open("/sessions/scen/__admin/ui/session")
    dashboard.live()
    dashboard.css("#scenario-text").send_keys(BAD_SCENARIO)
    dashboard.css("#scenario-form button").click()
    box = dashboard.wait(lambda d: d.find_element("id", "scenario-problems").is_displayed()
                         and d.find_element("id", "scenario-problems"))
    problems = [li.text for li in box.find_elements("css selector", "li")]
    assert problems, "no problem listed"
    assert all(re.match(r"^<request>:\d+: \S", p) for p in problems), problems
    assert any(p.startswith("<request>:6: ") for p in problems), problems  # amount: "ten"
    # nothing was applied
    names = [s["name"] for s in dashboard.http.get("/sessions/scen/__admin/scenarios").json()
             ["scenarios"]]
    assert names == ["default"]
    dashboard.screenshot("dashboard-scenario-problems")


def test_a_scenario_adds_fault_rules_whose_counters_follow_live(dashboard: Dashboard) -> None:
    dashboard.open("/sessions/faults/__admin/ui/session")
    dashboard.live()
    dashboard.css("#scenario-text").send_keys(FAULT_SCENARIO)
    dashboard.css("#scenario-form button").click()
    dashboard.wait(lambda d: d.find_elements("css selector", 'tr[data-rule="afterpay-outage"]'))
    assert dashboard.css("#scenario-result").text == "Loaded scenario outage; 1 fault rule."

    def counters(d: Any) -> list[str]:
        row = d.find_element("css selector", 'tr[data-rule="afterpay-outage"]')
        return [c.text for c in row.find_elements("css selector", "td")][-2:]

    assert counters(dashboard.driver) == ["0", "2"]
    assert refund(dashboard, "faults", 1).status_code == 503
    dashboard.wait(lambda d: counters(d) == ["1", "1"])
    row = dashboard.wait(lambda d: d.find_element("css selector", "#journal-rows tr"))
    assert [c.text for c in row.find_elements("css selector", "td")][-3::2] == \
        ["503", "afterpay-outage"]


def test_reset_goes_back_to_the_startup_world(dashboard: Dashboard) -> None:
    assert refund(dashboard, "reset-me", 1, "120.00").status_code == 201
    dashboard.open("/sessions/reset-me/__admin/ui/session")
    dashboard.live()
    assert dashboard.css('tr[data-account="afterpay:100101785223"] [data-field="left"]').text \
        == "0.00"
    dashboard.css("#reset-session").click()
    dashboard.wait(lambda d: d.find_element("css selector", 'tr[data-account="afterpay:'
                   '100101785223"] [data-field="left"]').text == "120.00")
    dashboard.wait(lambda d: not d.find_elements("css selector", "#journal-rows tr"))
    assert dashboard.css("#reset-result").text == "Session reset-me was reset."
    # still live on the fresh journal
    assert refund(dashboard, "reset-me", 2).status_code == 201
    dashboard.wait(lambda d: len(d.find_elements("css selector", "#journal-rows tr")) == 1)


def test_the_token_is_asked_for_and_no_data_is_shown_without_it(
        dashboard_for: Callable[..., Dashboard]) -> None:
    board = dashboard_for(admin_token="s3cret-admin")
    board.expect_refusal("/sessions/guarded/__admin/ui/session", 401)  # the page, locked
    assert refund(board, "guarded", 1).status_code == 201
    page = board.http.get("/sessions/guarded/__admin/ui/session")
    assert page.status_code == 401
    assert "100101785223" not in page.text and "journal-rows" not in page.text
    board.open("/sessions/guarded/__admin/ui/session")
    board.wait(lambda d: d.find_element("id", "admin-token"))
    assert "100101785223" not in board.driver.page_source
    assert board.driver.switch_to.active_element == board.css("#admin-token")
    board.screenshot("dashboard-token")
    board.css("#admin-token").send_keys("wrong")
    board.css("#token-form button").click()
    board.wait(lambda d: d.find_element("id", "token-error").text)
    assert board.css("#token-error").text == "That token was refused. Try again."
    assert "100101785223" not in board.driver.page_source
    field = board.css("#admin-token")
    field.clear()
    field.send_keys("s3cret-admin")
    board.css("#token-form button").click()
    board.wait(lambda d: d.find_elements("css selector", "#journal-rows tr"))
    board.live()  # the stream, with the token in its header
    assert refund(board, "guarded", 2).status_code == 201
    board.wait(lambda d: len(d.find_elements("css selector", "#journal-rows tr")) == 2)
    # a reload asks nothing more of this tab: the token is in its sessionStorage
    board.driver.refresh()
    board.wait(lambda d: len(d.find_elements("css selector", "#journal-rows tr")) == 2)
    board.css("#forget-token").click()
    board.wait(lambda d: d.find_element("id", "admin-token"))
    assert "100101785223" not in board.driver.page_source


def test_every_control_has_a_label_and_the_page_is_usable_by_keyboard(
        dashboard: Dashboard) -> None:
    from selenium.webdriver.common.keys import Keys

    dashboard.open("/sessions/keys/__admin/ui/session")
    dashboard.live()
    for control in dashboard.all("input, select, textarea"):
        ident = control.get_attribute("id")
        assert ident and dashboard.all(f'label[for="{ident}"]'), control.get_attribute("outerHTML")
    for button in dashboard.all("button"):
        assert button.text.strip() or button.get_attribute("aria-label"), \
            button.get_attribute("outerHTML")
    # the first Tab reaches the skip link, which leads to the content
    body = dashboard.css("body")
    body.send_keys(Keys.TAB)
    skip = dashboard.driver.switch_to.active_element
    assert skip.text == "Skip to content"
    skip.send_keys(Keys.ENTER)
    assert dashboard.driver.switch_to.active_element == dashboard.css("#main")
    # the advance form submits on Enter, from its number field
    amount = dashboard.css("#advance-by")
    amount.clear()
    amount.send_keys("2", Keys.ENTER)
    dashboard.wait(lambda d: d.find_element("id", "clock-offset").text == "172800.0")


def test_pages_forbid_every_other_origin(dashboard: Dashboard) -> None:
    for path in ("/__admin/ui/", "/__admin/ui/session", "/sessions/x/__admin/ui/requests/1"):
        policy = dashboard.http.get(path).headers["content-security-policy"]
        assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    dashboard.open("/__admin/ui/session")
    dashboard.live()
    # what the browser loaded: the page, its script, style sheet and icon, and the stream
    origins = {re.match(r"^[a-z]+://[^/]+", u).group(0)  # type: ignore[union-attr]
               for u in dashboard.requested_urls() if u.startswith(("http", "ws"))}
    assert origins == {dashboard.url}
    resources = dashboard.driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(r.startswith(dashboard.url + "/") for r in resources), resources
